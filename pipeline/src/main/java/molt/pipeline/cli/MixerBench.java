package molt.pipeline.cli;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.List;
import java.util.concurrent.Callable;
import molt.student.mixer.MixerRegistry;
import molt.student.mixer.MixerSettings;
import molt.teacher.Devices;
import molt.teacher.model.AttentionCore;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code molt bench mixers}: each mixer's training form (forward + backward) at growing lengths and its decoding
 * step at two context lengths, beside causal softmax attention on the same q, k, v in the same run.
 */
@Command(name = "mixers", mixinStandardHelpOptions = true,
        description = "Mixers vs softmax attention: training-form time by length, decode time and state bytes.")
final class MixerBench implements Callable<Integer> {
    @Option(names = "--lengths", split = ",", defaultValue = "512,1024,2048,4096,8192",
            description = "Sequence lengths for the training form. Default: ${DEFAULT-VALUE}.")
    List<Integer> lengths;

    @Option(names = "--mixers", split = ",", defaultValue = "softmax,hedgehog,hedgehog_window,retention,gla,gla_liger,gated_deltanet,mamba2",
            description = "What to measure. Default: ${DEFAULT-VALUE}.")
    List<String> mixers;

    @Option(names = "--heads", defaultValue = "4") int heads;
    @Option(names = "--head-dim", defaultValue = "64") int headDim;
    @Option(names = "--contexts", split = ",", defaultValue = "512,8192",
            description = "Decode context lengths. Default: ${DEFAULT-VALUE}.")
    List<Integer> contexts;
    @Option(names = "--device", defaultValue = "cpu") String device;
    @Option(names = "--chunk-size", description = "Chunk length of the training forms (at least the window). "
            + "Default: the students' default.") Integer chunkSize;

    @Override
    public Integer call() {
        Device d = Devices.resolve(device);
        MixerSettings s = MixerSettings.lolcats();
        if (chunkSize != null) {
            if (chunkSize < s.window()) {
                throw new molt.teacher.InputException("--chunk-size must be at least the window (" + s.window()
                        + "), found " + chunkSize);
            }
            s = new MixerSettings(s.featureDim(), s.window(), chunkSize, s.windowFactorInit());
        }
        double gemm = BenchCommand.gemmGflops(d, 2048, 3);
        System.out.printf("fp32 GEMM: %.1f GFLOP/s; B=1, H=%d, D=%d, feature_dim %d, window %d, chunk %d%n", gemm,
                heads, headDim, s.featureDim(), s.window(), s.chunkSize());
        StringBuilder head = new StringBuilder(String.format("%-16s", "train fwd+bwd"));
        for (int t : lengths) {
            head.append(String.format("%12s", "T=" + t));
        }
        head.append(String.format("  %s", "t(last)/t(1024)"));
        System.out.println(head);
        for (String name : mixers) {
            StringBuilder row = new StringBuilder(String.format("%-16s", name));
            double at1024 = Double.NaN;
            double last = Double.NaN;
            trainTime(d, name, s, lengths.get(0)); // untimed: the JIT and libtorch's first calls, not the mixer
            for (int t : lengths) {
                double sec = trainTime(d, name, s, t);
                row.append(String.format("%11.3fs", sec));
                if (t == 1024) {
                    at1024 = sec;
                }
                last = sec;
            }
            row.append(String.format("  %15.1f", last / at1024));
            System.out.println(row);
        }
        System.out.printf("%-16s", "decode");
        for (int c : contexts) {
            System.out.printf("%16s %14s", "ms/token@" + c, "state B@" + c);
        }
        System.out.println();
        for (String name : mixers) {
            System.out.printf("%-16s", name);
            for (int c : contexts) {
                double[] r = decode(d, name, s, c);
                System.out.printf("%16.3f %14d", r[0], (long) r[1]);
            }
            System.out.println();
        }
        return 0;
    }

    private NDArray[] qkv(NDManager m, int t) {
        Shape shape = new Shape(1, heads, t, headDim);
        NDArray q = m.randomNormal(shape);
        NDArray k = m.randomNormal(shape);
        NDArray v = m.randomNormal(shape);
        for (NDArray x : new NDArray[] {q, k, v}) {
            x.setRequiresGradient(true);
        }
        return new NDArray[] {q, k, v};
    }

    private double trainTime(Device d, String name, MixerSettings s, int t) {
        long best = Long.MAX_VALUE;
        for (int rep = 0; rep < 2; rep++) {
            try (NDManager m = NDManager.newBaseManager(d)) {
                AttentionCore core = MixerRegistry.core(name, m, heads, headDim, heads * headDim, s);
                NDArray[] x = qkv(m, t);
                long t0 = System.nanoTime();
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    gc.backward(core.forward(m, input(m, x[0], x[1], x[2]), false).out().sum());
                }
                x[0].getGradient().getFloat(0, 0, 0, 0);
                best = Math.min(best, System.nanoTime() - t0);
            }
        }
        return best / 1e9;
    }

    /** What every mixer may read: q, k, v, the same q, k as "before RoPE", and a random hidden state [B, T, H*D]. */
    private AttentionInput input(NDManager m, NDArray q, NDArray k, NDArray v) {
        Shape s = q.getShape();
        NDArray hidden = m.randomNormal(new Shape(s.get(0), s.get(2), (long) heads * headDim));
        return new AttentionInput(hidden, q, k, v, q, k);
    }

    /** ms per decoded token after a context of {@code c} tokens, and the state's bytes. */
    private double[] decode(Device d, String name, MixerSettings s, int c) {
        try (NDManager m = NDManager.newBaseManager(d)) {
            int steps = 32;
            AttentionCore core = MixerRegistry.core(name, m, heads, headDim, heads * headDim, s);
            core.parameters().values().forEach(p -> p.setRequiresGradient(false));
            NDArray[] x;
            try (NDManager pre = m.newSubManager()) {
                NDArray q = pre.randomNormal(new Shape(1, heads, c, headDim));
                NDArray k = pre.randomNormal(new Shape(1, heads, c, headDim));
                NDArray v = pre.randomNormal(new Shape(1, heads, c, headDim));
                AttentionCore.Output o = core.forward(pre, input(pre, q, k, v), true);
                try (AttentionState st = o.state()) {
                    long t0 = System.nanoTime();
                    for (int i = 0; i < steps; i++) {
                        try (NDManager step = m.newSubManager()) {
                            NDArray one = step.randomNormal(new Shape(1, heads, 1, headDim));
                            core.step(step, st, input(step, one, one, one)).getFloat(0, 0, 0, 0);
                        }
                    }
                    return new double[] {(System.nanoTime() - t0) / 1e6 / steps, st.bytes()};
                }
            }
        }
    }
}
