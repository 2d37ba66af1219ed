package molt.pipeline.cli;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import molt.teacher.Devices;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.model.LlamaModel;
import molt.teacher.model.Taps;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code molt bench}: speed measured side by side with this machine's fp32 GEMM rate in the same run, since shared
 * machines are noisy and only ratios travel.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks: 'teacher' (forward tokens/s by model size), 'mixers' (mixers vs softmax "
                + "attention), 'attention' (causal attention op by op against fused), each beside the fp32 GEMM rate "
                + "measured in the same run; 'decode' (a model's decoding "
                + "speed beside its teacher's); 'scale' (attention transfer and LoRA at real model shapes); 'data', 'train', 'soak'.",
        subcommands = {BenchCommand.Teacher.class, MixerBench.class, DataBench.class, TrainBench.class, ScaleBench.class,
            SoakBench.class, DecodeBench.class, AttentionBench.class})
public final class BenchCommand implements Runnable {

    @Override
    public void run() {
        new picocli.CommandLine(this).usage(System.out);
    }

    /** GFLOP/s of an n x n x n fp32 matMul, best of {@code reps}. */
    static double gemmGflops(Device device, int n, int reps) {
        try (NDManager m = NDManager.newBaseManager(device)) {
            NDArray a = m.randomNormal(new Shape(n, n));
            NDArray b = m.randomNormal(new Shape(n, n));
            a.matMul(b).close(); // warm-up
            return bestGflops(n, reps, () -> a.matMul(b));
        }
    }

    /**
     * GFLOP/s of an n x n x n product of F32 activations with F16 weights in BF16 ({@link molt.teacher.nd.Bf16Products},
     * the conversions included), best of {@code reps} after a warm-up, on CPU; NaN where the BF16 function is
     * unavailable.
     */
    static double bf16GemmGflops(int n, int reps) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray a = m.randomNormal(new Shape(n, n));
            NDArray b = m.randomNormal(new Shape(n, n)).toType(DataType.FLOAT16, false);
            NDArray first = molt.teacher.nd.Bf16Products.product(a, b);
            if (first == null) {
                return Double.NaN;
            }
            first.close(); // warm-up
            return bestGflops(n, reps, () -> molt.teacher.nd.Bf16Products.product(a, b));
        }
    }

    /** The best rate of {@code reps} runs of an n x n x n {@code product}, each result read back and freed. */
    private static double bestGflops(int n, int reps, java.util.function.Supplier<NDArray> product) {
        long best = Long.MAX_VALUE;
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            try (NDArray c = product.get()) {
                c.toType(DataType.FLOAT32, false).getFloat(0, 0); // force completion on asynchronous devices
            }
            best = Math.min(best, System.nanoTime() - t0);
        }
        return 2.0 * n * n * n / best;
    }

    @Command(name = "teacher", mixinStandardHelpOptions = true,
            description = "Teacher forward tokens/s (random weights) beside the fp32 GEMM rate.")
    static final class Teacher implements Callable<Integer> {
        @Option(names = "--hidden", split = ",", defaultValue = "256,512,1024",
                description = "Hidden sizes to measure. Default: ${DEFAULT-VALUE}.")
        List<Integer> hidden;

        @Option(names = "--layers", defaultValue = "4", description = "Layers per model. Default: ${DEFAULT-VALUE}.")
        int layers;

        @Option(names = "--seq-len", defaultValue = "256", description = "Tokens per forward. Default: ${DEFAULT-VALUE}.")
        int seqLen;

        @Option(names = "--reps", defaultValue = "3", description = "Timed repetitions (best is kept). Default: ${DEFAULT-VALUE}.")
        int reps;

        @Option(names = "--device", defaultValue = "cpu", description = "cpu, gpu, gpu:N or auto.")
        String device;

        @Override
        public Integer call() {
            Device d = Devices.resolve(device);
            double g1 = gemmGflops(d, 1024, 5);
            double g2 = gemmGflops(d, 2048, 3);
            double peak = Math.max(g1, g2);
            System.out.printf("threads: %d available processors%n", Runtime.getRuntime().availableProcessors());
            System.out.printf("fp32 GEMM: %.1f GFLOP/s at 1024^3, %.1f GFLOP/s at 2048^3%n", g1, g2);
            System.out.printf("%-8s %-7s %-12s %-8s %-12s %-10s %-10s%n", "hidden", "layers", "params", "tokens",
                    "tokens/s", "GFLOP/s", "of GEMM");
            for (int h : hidden) {
                LlamaConfig c = config(h, layers);
                try (LlamaModel m = LlamaModel.fromWeights(c, new molt.teacher.io.RandomWeights(c, 1), d);
                     NDManager out = NDManager.newBaseManager(d)) {
                    long[][] toks = new long[1][seqLen];
                    Random r = new Random(1);
                    for (int i = 0; i < seqLen; i++) {
                        toks[0][i] = r.nextInt(c.vocabSize());
                    }
                    m.forward(out, toks, Taps.Request.none()).logits().close();
                    long best = Long.MAX_VALUE;
                    for (int i = 0; i < reps; i++) {
                        long t0 = System.nanoTime();
                        m.forward(out, toks, Taps.Request.none()).logits().close();
                        best = Math.min(best, System.nanoTime() - t0);
                    }
                    double flops = forwardFlops(c, seqLen);
                    double gflops = flops / best;
                    System.out.printf("%-8d %-7d %-12s %-8d %-12.1f %-10.1f %-10s%n", h, layers,
                            String.format("%,d", LlamaWeights.parameterCount(c)), seqLen, seqLen / (best / 1e9), gflops,
                            String.format("%.0f%%", 100 * gflops / peak));
                }
            }
            return 0;
        }

        static LlamaConfig config(int hidden, int layers) {
            var json = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode()
                    .put("model_type", "llama").put("vocab_size", 8192).put("hidden_size", hidden)
                    .put("intermediate_size", hidden * 8 / 3 / 64 * 64).put("num_hidden_layers", layers)
                    .put("num_attention_heads", hidden / 64).put("num_key_value_heads", Math.max(1, hidden / 256))
                    .put("rms_norm_eps", 1e-5).put("rope_theta", 10000.0);
            return LlamaConfig.fromJson(json, Path.of("bench"));
        }

        /** Matmul FLOPs of one forward: 2 per weight per token, plus QK^T and PV (causal half counted in full). */
        static double forwardFlops(LlamaConfig c, int t) {
            double perToken = 0;
            for (Map.Entry<String, long[]> e : LlamaWeights.expected(c).entrySet()) {
                if (e.getValue().length == 2 && !e.getKey().equals("model.embed_tokens.weight")) {
                    perToken += 2.0 * e.getValue()[0] * e.getValue()[1];
                }
            }
            if (c.tieWordEmbeddings()) {
                perToken += 2.0 * c.vocabSize() * c.hiddenSize();
            }
            double attention = 2.0 * 2.0 * c.numLayers() * (double) c.numHeads() * c.headDim() * t * t;
            return perToken * t + attention;
        }
    }
}
