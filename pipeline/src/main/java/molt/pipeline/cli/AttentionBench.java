package molt.pipeline.cli;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import java.util.concurrent.Callable;
import molt.pipeline.eval.DecodeTiming;
import molt.teacher.Devices;
import molt.teacher.InputException;
import molt.teacher.model.LlamaBlocks;
import molt.teacher.nd.FusedAttention;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code molt bench attention}: one layer's causal softmax attention without gradients, computed op by op (scores,
 * scale, mask, softmax, product) and fused ({@link FusedAttention}), side by side in one process at each length,
 * beside the F32 GEMM rate measured in the same run.
 */
@Command(name = "attention", mixinStandardHelpOptions = true,
        description = "Causal attention without gradients, op by op against fused (scaled_dot_product_attention), "
                + "milliseconds per layer by length, beside the F32 GEMM rate measured in the same run.")
final class AttentionBench implements Callable<Integer> {
    @Option(names = "--lengths", split = ",", defaultValue = "256,512,1024,2048",
            description = "Sequence lengths. Default: ${DEFAULT-VALUE}.")
    List<Integer> lengths;

    @Option(names = "--heads", defaultValue = "9", description = "Query heads. Default: ${DEFAULT-VALUE} (SmolLM2-135M).")
    int heads;

    @Option(names = "--head-dim", defaultValue = "64", description = "Head dimension. Default: ${DEFAULT-VALUE}.")
    int headDim;

    @Option(names = "--reps", defaultValue = "10", description = "Timed repetitions per form (median kept). "
            + "Default: ${DEFAULT-VALUE}.")
    int reps;

    @Option(names = "--threads", defaultValue = "auto", description = "A number or auto (all cores). Default: "
            + "${DEFAULT-VALUE}.")
    String threads;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu, gpu, gpu:N or auto.")
    String device;

    @Override
    public Integer call() {
        if (reps < 1 || heads < 1 || headDim < 1 || lengths.stream().anyMatch(t -> t < 1)) {
            throw new InputException("--reps, --heads, --head-dim and every --lengths value must be >= 1");
        }
        if (!threads.equals("auto") && !threads.matches("[1-9][0-9]{0,3}")) {
            throw new InputException("--threads: expected a number from 1 or auto, found '" + threads + "'");
        }
        int n = threads.equals("auto") ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(threads);
        molt.teacher.Threads.set(n);
        Device d = Devices.resolve(device);
        if (!FusedAttention.available()) {
            throw new InputException("fused attention is off (MOLT_FUSED_ATTENTION=0) or could not be loaded");
        }
        double gemm = BenchCommand.gemmGflops(d, 2048, 3);
        System.out.printf("F32 GEMM (2048^3, same run, %d thread(s)): %.1f GFLOP/s; %d heads of %d, batch 1, no "
                + "gradients; median of %d%n", n, gemm, heads, headDim, reps);
        System.out.printf("%8s %14s %12s %8s %22s%n", "T", "op by op ms", "fused ms", "ratio",
                "fused GFLOP/s (T^2/2)");
        try (NDManager m = NDManager.newBaseManager(d)) {
            for (int t : lengths) {
                NDArray q = m.randomNormal(new Shape(1, heads, t, headDim));
                NDArray k = m.randomNormal(new Shape(1, heads, t, headDim));
                NDArray v = m.randomNormal(new Shape(1, heads, t, headDim));
                double[] explicit = new double[reps];
                double[] fused = new double[reps];
                for (int r = -1; r < reps; r++) { // r = -1: one untimed warm-up of each
                    double a = time(m, s -> LlamaBlocks.softmaxAttention(s, q, k, v, 0, true).get(0));
                    double b = time(m, s -> FusedAttention.causal(s, q, k, v));
                    if (r >= 0) {
                        explicit[r] = a;
                        fused[r] = b;
                    }
                }
                double e = DecodeTiming.median(explicit);
                double f = DecodeTiming.median(fused);
                double flops = 2.0 * 2 * heads * (double) t * t / 2 * headDim; // QK^T and PV over the causal half
                System.out.printf("%8d %14.2f %12.2f %7.1fx %22.1f%n", t, e, f, e / f, flops / (f * 1e6));
            }
        }
        System.out.println("op by op: the explicit path (asked for the weights, so never fused); fused: "
                + "scaled_dot_product_attention through molt's TorchScript module");
        return 0;
    }

    /** Milliseconds for one attention, its result read back (so asynchronous devices finish). */
    private static double time(NDManager m, java.util.function.Function<NDManager, NDArray> attention) {
        try (NDManager s = m.newSubManager()) {
            long t0 = System.nanoTime();
            attention.apply(s).getFloat(0, 0, 0, 0);
            return (System.nanoTime() - t0) / 1e6;
        }
    }
}
