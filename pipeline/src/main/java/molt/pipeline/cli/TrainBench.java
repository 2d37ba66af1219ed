package molt.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.run.Runner;
import molt.pipeline.run.StopSignal;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.io.DType;
import molt.teacher.io.SafetensorsWriter;
import molt.teacher.tokenizer.ByteTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code molt bench train}: tokens/s of the attention-transfer and LoRA stages on a random teacher (byte vocabulary,
 * the built-in corpus), and the fraction of this machine's fp32 GEMM rate, measured in the same run, that their
 * matmul work reaches.
 */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Training-stage tokens/s and fraction of the fp32 GEMM rate (random teacher, built-in corpus).")
final class TrainBench implements Callable<Integer> {
    @Option(names = "--hidden", defaultValue = "512") int hidden;
    @Option(names = "--layers", defaultValue = "4") int layers;
    @Option(names = "--seq-len", defaultValue = "512") int seqLen;
    @Option(names = "--steps", defaultValue = "12") int steps;

    @Override
    public Integer call() throws Exception {
        Path dir = Files.createTempDirectory("molt-bench-train");
        try {
            LlamaConfig cfg = byteVocabulary(BenchCommand.Teacher.config(hidden, layers));
            Path teacher = writeRandomTeacher(cfg, dir.resolve("teacher"));
            long tokens = (long) steps * seqLen;
            Path yaml = dir.resolve("bench.yaml");
            Files.writeString(yaml, """
                    output_dir: %s
                    teacher: {path: %s}
                    data: {source: europarl-en, seq_len: %d}
                    checkpoint: {every_steps: 1000000}
                    stages:
                      - {name: transfer, type: attention_transfer, tokens: %d, val_every: 1000000, val_batches: 1}
                      - {name: finetune, type: lora_finetune, tokens: %d, grad_accum: 1, val_every: 1000000, val_batches: 1}
                    """.formatted(dir.resolve("run"), teacher, seqLen, tokens, tokens));
            RunConfig rc = ConfigLoader.load(yaml, List.of());
            System.setProperty("ai.djl.pytorch.num_threads", String.valueOf(Runtime.getRuntime().availableProcessors()));
            double gemm = BenchCommand.gemmGflops(ai.djl.Device.cpu(), 2048, 3);
            try (StopSignal stop = StopSignal.manual()) {
                Runner.run(rc, stop);
            }
            double fwd = BenchCommand.Teacher.forwardFlops(cfg, seqLen) / seqLen; // per token
            System.out.printf("fp32 GEMM: %.1f GFLOP/s; random teacher hidden %d, %d layers, %,d parameters, %d-token "
                    + "sequences; %d steps per stage, median step%n", gemm, hidden, layers, LlamaWeights.parameterCount(cfg),
                    seqLen, steps);
            System.out.printf("%-20s %12s %14s %10s%n", "stage", "tokens/s", "GFLOP/s", "of GEMM");
            // Attention transfer: teacher forward + mixer forward/backward (small); LoRA: student forward + backward
            // through the frozen network (about 3 forwards).
            report(dir.resolve("run/metrics.jsonl"), "transfer", fwd, gemm);
            report(dir.resolve("run/metrics.jsonl"), "finetune", 3 * fwd, gemm);
        } finally {
            try (var s = Files.walk(dir)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        return 0;
    }

    /** {@code c} with molt's byte vocabulary. */
    static LlamaConfig byteVocabulary(LlamaConfig c) {
        return LlamaConfig.fromJson(c.raw().deepCopy().put("vocab_size", ByteTokenizer.VOCAB), Path.of("bench"));
    }

    /** A Hugging Face directory with random F32 weights of {@code cfg}'s shapes and the byte tokenizer. */
    static Path writeRandomTeacher(LlamaConfig cfg, Path dir) throws java.io.IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), cfg.raw().toPrettyString());
        molt.teacher.io.RandomWeights w = new molt.teacher.io.RandomWeights(cfg, 1);
        List<SafetensorsWriter.Tensor> t = new ArrayList<>();
        for (Map.Entry<String, long[]> e : LlamaWeights.expected(cfg).entrySet()) {
            t.add(SafetensorsWriter.Tensor.ofFloats(e.getKey(), DType.F32, e.getValue(), () -> w.readFloats(e.getKey())));
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), t, Map.of());
        new ByteTokenizer().save(dir);
        return dir;
    }

    private static void report(Path metrics, String stage, double flopsPerToken, double gemm) throws Exception {
        List<Double> rates = new ArrayList<>();
        for (JsonNode n : molt.pipeline.run.MetricsLog.records(metrics)) {
            if (n.path("stage").asText().equals(stage) && n.path("step").asInt() > 1) {
                rates.add(n.path("tokens_per_s").asDouble());
            }
        }
        Collections.sort(rates);
        double median = rates.get(rates.size() / 2);
        double gflops = median * flopsPerToken / 1e9;
        System.out.printf("%-20s %12.0f %14.1f %9.0f%%%n", stage, median, gflops, 100 * gflops / gemm);
    }
}
