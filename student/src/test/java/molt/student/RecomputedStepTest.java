package molt.student;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import molt.student.lora.LoraConfig;
import molt.student.mixer.MixerSettings;
import molt.teacher.Precision;
import molt.teacher.io.DType;
import molt.teacher.model.LlamaModel;
import molt.teacher.nd.NativeArrays;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The recomputed training step gives the gradients of one backward through the whole graph. */
class RecomputedStepTest {
    private static final MixerSettings SETTINGS = new MixerSettings(4, 4, 8, -2.197);

    private static long[][] tokens(int b, int t, long seed) {
        Random r = new Random(seed);
        long[][] x = new long[b][t];
        for (long[] row : x) {
            for (int i = 0; i < t; i++) {
                row[i] = r.nextInt(64);
            }
        }
        return x;
    }

    /** Mean next-token negative log-likelihood over [B, T] of logits slice positions [from, to), as a share. */
    private static NDArray nllShare(NDManager scope, NDArray logits, long[][] targets, int from, int to, int total) {
        int b = targets.length;
        long[] ids = new long[b * (to - from)];
        for (int i = 0; i < b; i++) {
            for (int j = from; j < to; j++) {
                ids[i * (to - from) + j - from] = targets[i][j];
            }
        }
        NDArray y = NativeArrays.longs(scope, ids, new Shape(b, to - from, 1));
        return logits.logSoftmax(-1).gather(y, -1).neg().sum().div(molt.teacher.nd.Scalars.of((float) total));
    }

    private static Map<String, float[]> grads(StudentModel s) {
        Map<String, float[]> g = new LinkedHashMap<>();
        Map<String, NDArray> all = new LinkedHashMap<>(s.loraParameters());
        all.putAll(s.mixerParameters());
        for (Map.Entry<String, NDArray> e : all.entrySet()) {
            if (e.getValue().hasGradient()) {
                g.put(e.getKey(), NativeArrays.values(e.getValue().getGradient()));
                e.getValue().getGradient().subi(e.getValue().getGradient()); // zero for the next pass
            }
        }
        return g;
    }

    private static StudentModel student(Path teacher, Precision precision, List<String> plan, double dropout) {
        StudentModel s = StudentModel.create(LlamaModel.load(teacher, Device.cpu(), precision), teacher,
                new StudentPlan(plan), SETTINGS);
        s.enableLora(new LoraConfig(2, 4, dropout, List.of("q", "k", "v", "o", "gate", "up", "down")), 5);
        Random r = new Random(3);
        for (NDArray p : s.loraParameters().values()) { // B != 0, so every adapter carries a gradient both ways
            float[] v = new float[Math.toIntExact(p.size())];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (0.1 * r.nextGaussian());
            }
            molt.teacher.nd.InPlace.copy(p, v);
        }
        s.setMixersTrainable(true);
        s.setLoraTrainable(true);
        return s;
    }

    @Test
    void gradientsMatchTheFullGraph(@TempDir Path dir) {
        for (Precision precision : Precision.values()) {
            Path teacher = TinyCheckpoints.builder().layers(3).dtype(DType.BF16).write(dir.resolve(precision.name()));
            long[][] batch = tokens(2, 13, 4);
            long[][] in = new long[2][12];
            long[][] target = new long[2][12];
            for (int b = 0; b < 2; b++) {
                System.arraycopy(batch[b], 0, in[b], 0, 12);
                System.arraycopy(batch[b], 1, target[b], 0, 12);
            }
            try (StudentModel s = student(teacher, precision, List.of("hedgehog_window", "softmax", "gla"), 0)) {
                double full;
                try (NDManager step = NDManager.newBaseManager(Device.cpu());
                     GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    s.setTraining(true, 1);
                    NDArray loss = nllShare(step, s.logits(step, in), target, 0, 12, 24);
                    full = loss.getFloat();
                    gc.backward(loss);
                }
                Map<String, float[]> want = grads(s);
                double recomputed;
                int arraysBefore = s.liveArrays();
                try (NDManager step = NDManager.newBaseManager(Device.cpu());
                     GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    recomputed = s.recomputedStep(step, in, 1, 5, (scope, logits, from, to) ->
                            nllShare(scope, logits, target, from, to, 24), gc);
                }
                assertEquals(arraysBefore, s.liveArrays(), "the step leaves no arrays in the models' managers");
                Map<String, float[]> got = grads(s);
                assertEquals(full, recomputed, 1e-5 * Math.abs(full), precision + ": loss");
                assertEquals(want.keySet(), got.keySet());
                assertTrue(want.size() > 20, "adapters and mixers all have gradients: " + want.size());
                // BF16 products (16-bit weights on an AMX CPU) round each product to 8 significant bits, and the
                // head's products over 5-position slices round differently from those over all 12 positions.
                boolean bf16 = precision != Precision.F32 && s.base().frozen() == molt.teacher.model.Frozen.HALF;
                for (String k : want.keySet()) {
                    double err = molt.teacher.testing.ReferenceLlama.relErr(got.get(k), toDouble(want.get(k)));
                    assertTrue(err < (bf16 ? 2e-2 : 1e-4), precision + " " + k + ": relative error " + err);
                }
            }
        }
    }

    /** With dropout, the gradient is the loss's derivative only if both passes of each layer draw the same mask. */
    @Test
    void withDropoutTheGradientIsTheDerivativeOfTheLoss(@TempDir Path dir) {
        Path teacher = TinyCheckpoints.builder().layers(2).write(dir.resolve("t"));
        long[][] in = tokens(1, 10, 5);
        long[][] target = tokens(1, 10, 6);
        try (StudentModel s = student(teacher, Precision.F32, List.of("hedgehog", "hedgehog"), 0.5)) {
            s.setMixersTrainable(false);
            s.setTraining(true, 0);
            java.util.function.DoubleSupplier loss = () -> {
                try (NDManager step = NDManager.newBaseManager(Device.cpu());
                     GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    return s.recomputedStep(step, in, 42, 4, (scope, logits, from, to) ->
                            nllShare(scope, logits, target, from, to, 10), gc);
                }
            };
            double l0 = loss.getAsDouble();
            Map<String, float[]> g = grads(s);
            assertEquals(l0, loss.getAsDouble(), 0.0, "the same dropout seed gives the same loss");
            grads(s);
            Map<String, NDArray> params = s.loraParameters();
            Map<String, float[]> base = new LinkedHashMap<>();
            Map<String, float[]> dir2 = new LinkedHashMap<>();
            Random r = new Random(8);
            double slope = 0;
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                float[] v = NativeArrays.values(e.getValue());
                float[] d = new float[v.length];
                for (int i = 0; i < d.length; i++) {
                    d[i] = (float) r.nextGaussian();
                    slope += (double) d[i] * g.get(e.getKey())[i];
                }
                base.put(e.getKey(), v);
                dir2.put(e.getKey(), d);
            }
            double eps = 1e-3;
            double[] at = new double[2];
            for (int side = 0; side < 2; side++) {
                double sign = side == 0 ? 1 : -1;
                for (Map.Entry<String, NDArray> e : params.entrySet()) {
                    float[] v = base.get(e.getKey()).clone();
                    float[] d = dir2.get(e.getKey());
                    for (int i = 0; i < v.length; i++) {
                        v[i] += (float) (sign * eps * d[i]);
                    }
                    molt.teacher.nd.InPlace.copy(e.getValue(), v);
                }
                at[side] = loss.getAsDouble();
                grads(s);
            }
            double numeric = (at[0] - at[1]) / (2 * eps);
            assertTrue(Math.abs(numeric - slope) < 0.02 * Math.abs(slope) + 1e-4,
                    "directional derivative " + numeric + " vs gradient " + slope);
        }
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
