package molt.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.run.MemoryEstimate;
import molt.pipeline.run.Runner;
import molt.pipeline.run.StopSignal;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.Projection;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.DType;
import molt.teacher.io.SafetensorsWriter;
import molt.teacher.tokenizer.ByteTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code molt bench scale}: attention transfer and LoRA at real model shapes. It writes a random-weight checkpoint in
 * the exact shape of SmolLM2-135M, Llama-3.2-1B or Llama-3-8B (BF16, Hugging Face layout, sharded above 2 GiB) or
 * takes {@code --model}, runs both stages through {@code molt run} at 1024 tokens, batch 1, and reports per stage
 * tokens/s, the GFLOP/s its matrix work reaches beside the F32 GEMM rate measured in the same run at the same thread
 * count, where a step's time goes, its peak RSS beside validate's estimate, and the hours 20M + 20M tokens would take.
 */
@Command(name = "scale", mixinStandardHelpOptions = true,
        description = "Attention transfer and LoRA at SmolLM2-135M, Llama-3.2-1B or Llama-3-8B shapes (random "
                + "weights): tokens/s, share of the same-run GEMM rate, time per phase, peak RSS vs validate's estimate.")
final class ScaleBench implements Callable<Integer> {
    /** The shapes: Hugging Face config.json values of the real models. */
    static final Map<String, String> SHAPES = Map.of(
            "smollm2-135m", """
                    {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
                     "tie_word_embeddings": true, "rope_theta": 100000.0, "rms_norm_eps": 1e-05,
                     "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}""",
            "llama-3.2-1b", """
                    {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                     "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                     "tie_word_embeddings": true, "rope_theta": 500000.0, "rms_norm_eps": 1e-05,
                     "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}""",
            "llama-3-8b", """
                    {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                     "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                     "tie_word_embeddings": false, "rope_theta": 500000.0, "rms_norm_eps": 1e-05,
                     "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}""");
    /** Shards hold at most this many bytes (Hugging Face's sharding, as in the real checkpoints). */
    static final long SHARD_BYTES = 2L << 30;
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Ops listed per profiled stage. */
    private static final int PROFILE_LINES = 20;

    @Option(names = "--shape", defaultValue = "smollm2-135m",
            description = "smollm2-135m, llama-3.2-1b or llama-3-8b. Default: ${DEFAULT-VALUE}.")
    String shape;

    @Option(names = "--model", description = "A Hugging Face model directory to use instead of a random shape.")
    Path model;

    @Option(names = "--keep", description = "Keep the written checkpoint in DIR/<shape> and reuse it next time.")
    Path keep;

    @Option(names = "--steps", defaultValue = "3", description = "Timed steps per stage. Default: ${DEFAULT-VALUE}.")
    int steps;

    @Option(names = "--warmup", defaultValue = "1", description = "Untimed steps first. Default: ${DEFAULT-VALUE}.")
    int warmup;

    @Option(names = "--seq-len", defaultValue = "1024", description = "Tokens per step. Default: ${DEFAULT-VALUE}.")
    int seqLen;

    @Option(names = "--precision", defaultValue = "auto", description = "f32, f16 or auto. Default: ${DEFAULT-VALUE}.")
    String precision;

    @Option(names = "--threads", defaultValue = "auto", description = "A number or auto. Default: ${DEFAULT-VALUE}.")
    String threads;

    @Option(names = "--mixer", defaultValue = "hedgehog_window", description = "Default: ${DEFAULT-VALUE}.")
    String mixer;

    @Option(names = "--recompute", defaultValue = "auto", description = "LoRA's recompute: auto, true or false. "
            + "Default: ${DEFAULT-VALUE}.")
    String recompute;

    @Option(names = "--profile", description = "Profile one more step per stage, after the timed ones, with "
            + "libtorch's profiler: DIR/<stage>-step-N.trace.json (Chrome trace) and the ops with the most self time.")
    Path profile;

    @Override
    public Integer call() throws Exception {
        if (steps < 1 || warmup < 0 || seqLen < 2) {
            throw new InputException("--steps must be >= 1, --warmup >= 0 and --seq-len >= 2");
        }
        java.util.List<String> mixers = new java.util.ArrayList<>(molt.student.mixer.MixerRegistry.names());
        mixers.add(molt.student.mixer.MixerRegistry.SOFTMAX);
        if (!mixers.contains(mixer)) {
            throw new InputException("--mixer: expected one of " + mixers + ", found '" + mixer + "'");
        }
        Path work = Files.createTempDirectory("molt-bench-scale");
        try {
            Path teacher = model != null ? model : checkpoint(work);
            LlamaConfig c = LlamaConfig.read(teacher);
            RunConfig rc = Runner.resolve(ConfigLoader.load(config(work, teacher), List.of()));
            double before = BenchCommand.gemmGflops(ai.djl.Device.cpu(), 2048, 3);
            if (profile != null) {
                molt.pipeline.train.StepProfiler.request(profile, profiledStep());
            }
            try (StopSignal stop = StopSignal.manual()) {
                Runner.run(rc, stop);
            } finally {
                molt.pipeline.train.StepProfiler.clear();
            }
            double after = BenchCommand.gemmGflops(ai.djl.Device.cpu(), 2048, 3);
            report(rc, c, teacher, work.resolve("run/metrics.jsonl"), before, after);
            if (profile != null) {
                for (String stage : List.of("transfer", "finetune")) {
                    Path trace = molt.pipeline.train.StepProfiler.trace(profile, stage, profiledStep());
                    System.out.printf("%s step %d, profiled (%s):%n", stage, profiledStep(), trace);
                    TraceSummary.read(trace).lines(PROFILE_LINES).forEach(System.out::println);
                }
            }
        } finally {
            delete(work);
        }
        return 0;
    }

    /** The step each stage profiles: the one after the warm-up and timed steps. */
    private long profiledStep() {
        return warmup + steps + 1L;
    }

    private Path config(Path work, Path teacher) throws IOException {
        long tokens = (long) (steps + warmup + (profile != null ? 1 : 0)) * seqLen;
        Path yaml = work.resolve("bench.yaml");
        Files.writeString(yaml, """
                output_dir: %s
                teacher: {path: %s}
                threads: %s
                precision: %s
                data: {source: europarl-en, seq_len: %d, batch_size: 1}
                checkpoint: {every_steps: 1000000}
                student: {mixer: %s}
                stages:
                  - {name: transfer, type: attention_transfer, tokens: %d, val_batches: 0, scheduler: constant}
                  - {name: finetune, type: lora_finetune, tokens: %d, grad_accum: 1, val_batches: 0, recompute: %s}
                """.formatted(work.resolve("run"), teacher, threads, precision, seqLen, mixer, tokens, tokens,
                recompute));
        return yaml;
    }

    /** The random checkpoint of {@link #shape}, written (or found under --keep). */
    private Path checkpoint(Path work) throws IOException {
        String json = SHAPES.get(shape);
        if (json == null) {
            throw new InputException("--shape: expected one of " + new java.util.TreeSet<>(SHAPES.keySet()) + ", found '"
                    + shape + "'");
        }
        LlamaConfig c = LlamaConfig.fromJson((ObjectNode) JSON.readTree(json), Path.of(shape));
        Path dir = keep != null ? keep.resolve(shape) : work.resolve(shape);
        if (Files.isRegularFile(dir.resolve("config.json")) && Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            System.out.println("using the checkpoint in " + dir);
            return dir;
        }
        long t0 = System.nanoTime();
        write(c, dir);
        System.out.printf("wrote %s (%,d parameters, BF16) in %.0f s%n", dir, LlamaWeights.parameterCount(c),
                (System.nanoTime() - t0) / 1e9);
        return dir;
    }

    /**
     * A random BF16 checkpoint of {@code c} in Hugging Face's layout: norms 1, matrices uniform with standard deviation
     * 0.02 (drawn block by block, so no tensor is ever held whole), sharded with an index above {@link #SHARD_BYTES}.
     * The tokenizer is molt's byte tokenizer: its ids are valid in any vocabulary and the matrix work is the model's.
     */
    static void write(LlamaConfig c, Path dir) throws IOException {
        write(c, dir, SHARD_BYTES);
    }

    /** As {@link #write(LlamaConfig, Path)} with shards of at most {@code shardBytes}. */
    static void write(LlamaConfig c, Path dir, long shardBytes) throws IOException {
        Files.createDirectories(dir);
        List<SafetensorsWriter.Tensor> tensors = new ArrayList<>();
        long total = 0;
        for (Map.Entry<String, long[]> e : LlamaWeights.expected(c).entrySet()) {
            String name = e.getKey();
            boolean norm = name.endsWith("norm.weight");
            long seed = name.hashCode();
            SafetensorsWriter.Tensor t = SafetensorsWriter.Tensor.ofBlocks(name, DType.BF16, e.getValue(),
                    (offset, into) -> fill(norm, seed ^ offset, into));
            tensors.add(t);
            total += t.bytes();
        }
        List<List<SafetensorsWriter.Tensor>> shards = new ArrayList<>();
        for (SafetensorsWriter.Tensor t : tensors) {
            if (shards.isEmpty() || shards.get(shards.size() - 1).stream()
                    .mapToLong(SafetensorsWriter.Tensor::bytes).sum() + t.bytes() > shardBytes) {
                shards.add(new ArrayList<>());
            }
            shards.get(shards.size() - 1).add(t);
        }
        Map<String, String> meta = Map.of("format", "pt");
        if (shards.size() == 1) {
            SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors, meta, false);
        } else {
            ObjectNode index = JSON.createObjectNode();
            index.putObject("metadata").put("total_size", total);
            ObjectNode map = index.putObject("weight_map");
            for (int s = 0; s < shards.size(); s++) {
                String file = String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
                shards.get(s).forEach(t -> map.put(t.name(), file));
                SafetensorsWriter.write(dir.resolve(file), shards.get(s), meta, false);
            }
            AtomicFiles.writeString(dir.resolve("model.safetensors.index.json"), index.toPrettyString());
        }
        new ByteTokenizer().save(dir);
        AtomicFiles.writeString(dir.resolve("config.json"), c.raw().toPrettyString());
    }

    private static void fill(boolean norm, long seed, float[] into) {
        if (norm) {
            java.util.Arrays.fill(into, 1f);
            return;
        }
        SplittableRandom r = new SplittableRandom(seed);
        float half = (float) (0.02 * Math.sqrt(3)); // uniform on [-half, half] has standard deviation 0.02
        for (int i = 0; i < into.length; i++) {
            into[i] = (float) ((r.nextDouble() * 2 - 1) * half);
        }
    }

    /**
     * One stage's timed steps from metrics.jsonl: median tokens/s, largest step peak, mean page faults per step (-1
     * where not recorded), mean phase seconds; null when the stage logged no timed step.
     */
    record StageRates(double tokensPerSecond, long peakMib, long faultsPerStep, Map<String, Double> phases) {
        static StageRates of(Path metrics, String stage, int warmup, int steps) throws IOException {
            List<Double> rates = new ArrayList<>();
            long peak = -1;
            long faults = 0;
            Map<String, Double> phases = new LinkedHashMap<>();
            int n = 0;
            for (JsonNode r : molt.pipeline.run.MetricsLog.records(metrics)) {
                int step = r.path("step").asInt();
                if (!r.path("stage").asText().equals(stage) || step <= warmup || step > warmup + steps) {
                    continue;
                }
                rates.add(r.path("tokens_per_s").asDouble());
                peak = Math.max(peak, r.path("peak_rss_mib").asLong(-1));
                faults = faults < 0 || !r.has("page_faults") ? -1 : faults + r.path("page_faults").asLong();
                r.path("phase_s").fields().forEachRemaining(p -> phases.merge(p.getKey(), p.getValue().asDouble(),
                        Double::sum));
                n++;
            }
            if (rates.isEmpty()) {
                return null;
            }
            int timed = n;
            phases.replaceAll((k, v) -> v / timed);
            Collections.sort(rates);
            return new StageRates(rates.get(rates.size() / 2), peak, faults < 0 ? -1 : faults / timed, phases);
        }
    }

    /**
     * True when a {@code mixer} student has parameters for attention transfer to train (window_only and softmax, the
     * teacher itself with LoRA, have none).
     */
    static boolean transfers(String mixer) {
        return molt.student.mixer.MixerRegistry.parameterCount(mixer, 1, 8, 8,
                molt.student.mixer.MixerSettings.lolcats()) > 0;
    }

    /** Attention transfer: the teacher's forward (projections and causal attention) through every layer. */
    static double transferFlopsPerToken(LlamaConfig c, int t) {
        double attention = 2.0 * c.numHeads() * c.headDim() * t; // QK^T and PV over T/2 keys on average
        return c.numLayers() * (2.0 * MemoryEstimate.layerWeights(c) + attention);
    }

    /**
     * LoRA: forward through the projections and the LM head, backward the activation gradients through the same
     * frozen weights, and forward plus both backward products of the adapters.
     */
    static double loraFlopsPerToken(LlamaConfig c, molt.student.lora.LoraConfig l) {
        double head = 2.0 * c.vocabSize() * c.hiddenSize();
        double adapters = 0;
        for (Projection p : l.projections()) {
            adapters += 2.0 * l.rank() * (p.in(c) + p.out(c));
        }
        return 2 * (c.numLayers() * 2.0 * MemoryEstimate.layerWeights(c) + head) + 3 * c.numLayers() * adapters;
    }

    /**
     * The report; the shares divide by the higher of the GEMM rates measured before and after the stages (on a shared
     * machine a rate measured once may be depressed, which would overstate every share).
     */
    private void report(RunConfig rc, LlamaConfig c, Path teacher, Path metrics, double before, double after)
            throws IOException {
        double gemm = Math.max(before, after);
        StageRates at = StageRates.of(metrics, "transfer", warmup, steps);
        StageRates lora = StageRates.of(metrics, "finetune", warmup, steps);
        if (lora == null || (at == null && transfers(mixer))) {
            throw new IllegalStateException("no timed steps of " + (lora == null ? "LoRA" : "attention transfer")
                    + " in " + metrics);
        }
        double atFlops = transferFlopsPerToken(c, seqLen);
        double loraFlops = loraFlopsPerToken(c, rc.lora().toConfig());
        MemoryEstimate est = MemoryEstimate.of(rc, c);
        System.out.printf("model: %s (%,d parameters), %d-token sequences, batch 1, %s frozen weights, %d thread(s), "
                + "LoRA recompute %s%n", model != null ? teacher : shape, LlamaWeights.parameterCount(c), seqLen,
                rc.precision(), rc.threads(), recompute);
        System.out.printf("F32 GEMM (2048^3, same run, %d thread(s)): %.1f GFLOP/s before the stages, %.1f after; "
                + "shares below are of the higher%n", rc.threads(), before, after);
        long params = LlamaWeights.parameterCount(c);
        if (molt.teacher.nd.Bf16Products.usedFor(molt.teacher.Precision.resolve(rc.precision(), params))) {
            System.out.printf("frozen weights multiply in BF16 (this CPU has AMX): BF16 GEMM (2048^3, F32 times F16 "
                    + "weights, same run) %.1f GFLOP/s after the stages; the shares stay of the F32 rate%n",
                    BenchCommand.bf16GemmGflops(2048, 3));
        }
        System.out.println("FLOPs per token counted: transfer = layers x (2 x projection weights + 2 x heads x "
                + "head_dim x T) [the teacher forward, causal attention at T^2/2; mixers not counted]; LoRA = "
                + "2 x (layers x 2 x projection weights + 2 x vocab x hidden) + 3 x layers x 2 x rank x (in + out) "
                + "[forward and activation gradients through frozen weights and the LM head, adapters' three products;"
                + " mixers not counted]");
        System.out.printf("allocator: %s%n", molt.teacher.nd.NativeMemory.mode() == null
                ? "glibc's own settings (a MALLOC_ variable is set, or not glibc)"
                : molt.teacher.nd.NativeMemory.mode().name().toLowerCase(java.util.Locale.ROOT));
        System.out.printf("%-10s %10s %10s %8s %10s %12s %12s %13s  %s%n", "stage", "tokens/s", "GFLOP/s", "of GEMM",
                "GFLOP/tok", "peak RSS", "estimate", "faults/step",
                "seconds per step: data / prepare / forward / backward / optimizer");
        if (at != null) {
            row("transfer", at, atFlops, gemm, est.transferBytes());
        } else {
            System.out.printf("%-10s %s%n", "transfer", "none: a " + mixer + " student has no parameters for "
                    + "attention transfer to train");
        }
        row("lora", lora, loraFlops, gemm, est.loraBytes());
        if (at != null) {
            double hours = (20e6 / at.tokensPerSecond() + 20e6 / lora.tokensPerSecond()) / 3600;
            System.out.printf("projected: %.1f h for 20M tokens of attention transfer + 20M of LoRA%n", hours);
        } else {
            System.out.printf("projected: %.1f h for 20M tokens of LoRA%n", 20e6 / lora.tokensPerSecond() / 3600);
        }
    }

    private static void row(String name, StageRates r, double flopsPerToken, double gemm, long estimateBytes) {
        double gflops = r.tokensPerSecond() * flopsPerToken / 1e9;
        StringBuilder phases = new StringBuilder();
        r.phases().values().forEach(v -> phases.append(phases.length() == 0 ? "" : " / ").append(String.format("%.2f", v)));
        System.out.printf("%-10s %10.1f %10.1f %7.0f%% %10.3f %8.2f GiB %8.2f GiB %13s  %s%n", name,
                r.tokensPerSecond(), gflops, 100 * gflops / gemm, flopsPerToken / 1e9, r.peakMib() / 1024.0,
                estimateBytes / (double) (1L << 30), r.faultsPerStep() < 0 ? "-" : String.format("%,d", r.faultsPerStep()),
                phases);
    }

    private static void delete(Path dir) throws IOException {
        try (var s = Files.walk(dir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
