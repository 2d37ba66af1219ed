package molt.student.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.djl.engine.Engine;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class LoraAdapterTest {
    private static final int IN = 12;
    private static final int OUT = 7;
    private static final int N = 5;
    private static final LoraConfig CFG = new LoraConfig(3, 6, 0, List.of("q", "v"));

    private static float[] random(Random r, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * scale);
        }
        return v;
    }

    /** delta[n][o] = s * sum_k (sum_i x[n][i] A[k][i]) B[o][k], in double. */
    private static double[] referenceDelta(float[] x, float[] a, float[] b, double s) {
        int r = CFG.rank();
        double[] d = new double[N * OUT];
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < OUT; o++) {
                double acc = 0;
                for (int k = 0; k < r; k++) {
                    double low = 0;
                    for (int i = 0; i < IN; i++) {
                        low += (double) x[n * IN + i] * a[k * IN + i];
                    }
                    acc += low * b[o * r + k];
                }
                d[n * OUT + o] = s * acc;
            }
        }
        return d;
    }

    private static double loss(float[] x, float[] a, float[] b, float[] g) {
        double[] d = referenceDelta(x, a, b, CFG.scaling());
        double l = 0;
        for (int i = 0; i < d.length; i++) {
            l += d[i] * g[i];
        }
        return l;
    }

    private static double relErr(float[] got, double[] want) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < want.length; i++) {
            num += (got[i] - want[i]) * (got[i] - want[i]);
            den += want[i] * want[i];
        }
        return Math.sqrt(num / den);
    }

    @Test
    void freshAdapterChangesNothing() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            LoraAdapter lora = LoraAdapter.create(m, CFG, IN, OUT, 1);
            NDArray x = m.create(random(new Random(1), N * IN, 1), new Shape(N, IN));
            float[] d = lora.delta(m, x, true, new SplittableRandom(1)).toFloatArray();
            for (float v : d) {
                assertEquals(0f, v);
            }
            float[] a = lora.parameters().get("lora_A.weight").toFloatArray();
            double bound = 1.0 / Math.sqrt(IN);
            boolean nonZero = false;
            for (float v : a) {
                assertTrue(Math.abs(v) <= bound);
                nonZero |= v != 0;
            }
            assertTrue(nonZero);
        }
    }

    @Test
    void deltaAndGradientsMatchTheDoubleReference() {
        Random r = new Random(7);
        float[] x = random(r, N * IN, 1);
        float[] a = random(r, CFG.rank() * IN, 0.3);
        float[] b = random(r, OUT * CFG.rank(), 0.3);
        float[] g = random(r, N * OUT, 1);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            LoraAdapter lora = LoraAdapter.fromValues(m, CFG, IN, OUT, a, b);
            NDArray xs = m.create(x, new Shape(N, IN));
            NDArray gs = m.create(g, new Shape(N, OUT));
            float[] got;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray d = lora.delta(m, xs, true, new SplittableRandom(0));
                got = d.toFloatArray();
                gc.backward(d.mul(gs).sum());
            }
            assertTrue(relErr(got, referenceDelta(x, a, b, CFG.scaling())) < 1e-5);

            float[] gradA = lora.parameters().get("lora_A.weight").getGradient().toFloatArray();
            float[] gradB = lora.parameters().get("lora_B.weight").getGradient().toFloatArray();
            double h = 1e-3;
            double[] fdA = new double[a.length];
            for (int i = 0; i < a.length; i++) {
                float[] p = a.clone();
                float[] q = a.clone();
                p[i] += (float) h;
                q[i] -= (float) h;
                fdA[i] = (loss(x, p, b, g) - loss(x, q, b, g)) / ((double) p[i] - q[i]);
            }
            double[] fdB = new double[b.length];
            for (int i = 0; i < b.length; i++) {
                float[] p = b.clone();
                float[] q = b.clone();
                p[i] += (float) h;
                q[i] -= (float) h;
                fdB[i] = (loss(x, a, p, g) - loss(x, a, q, g)) / ((double) p[i] - q[i]);
            }
            assertTrue(relErr(gradA, fdA) < 1e-4, "dL/dA vs finite differences");
            assertTrue(relErr(gradB, fdB) < 1e-4, "dL/dB vs finite differences");
        }
    }

    @Test
    void mergedWeightGivesTheSameOutputAsTheAdapter() {
        Random r = new Random(3);
        float[] w = random(r, OUT * IN, 0.5);
        float[] x = random(r, N * IN, 1);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            LoraAdapter lora = LoraAdapter.fromValues(m, CFG, IN, OUT, random(r, CFG.rank() * IN, 0.3),
                    random(r, OUT * CFG.rank(), 0.3));
            NDArray xs = m.create(x, new Shape(N, IN));
            NDArray wT = m.create(w, new Shape(OUT, IN)).transpose();
            float[] unmerged = xs.matMul(wT).add(lora.delta(m, xs, false, null)).toFloatArray();
            float[] merged = xs.matMul(m.create(lora.mergeInto(w), new Shape(OUT, IN)).transpose()).toFloatArray();
            double[] want = new double[merged.length];
            for (int i = 0; i < want.length; i++) {
                want[i] = unmerged[i];
            }
            assertTrue(relErr(merged, want) < 1e-5);
        }
    }

    @Test
    void dropoutIsSeededAndScaled() {
        LoraConfig cfg = new LoraConfig(3, 6, 0.5, List.of("q"));
        Random r = new Random(5);
        float[] x = random(r, N * IN, 1);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            LoraAdapter lora = LoraAdapter.fromValues(m, cfg, IN, OUT, random(r, 3 * IN, 0.3), random(r, OUT * 3, 0.3));
            NDArray xs = m.create(x, new Shape(N, IN));
            float[] d1 = lora.delta(m, xs, true, new SplittableRandom(11)).toFloatArray();
            float[] d2 = lora.delta(m, xs, true, new SplittableRandom(11)).toFloatArray();
            float[] eval = lora.delta(m, xs, false, null).toFloatArray();
            assertArrayEquals(d1, d2);
            assertTrue(relErr(d1, toDouble(eval)) > 1e-3, "dropout must change the training output");
        }
    }

    @Test
    void invalidSettingsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new LoraConfig(0, 16, 0, List.of("q")));
        assertThrows(IllegalArgumentException.class, () -> new LoraConfig(8, 16, 1.0, List.of("q")));
        assertThrows(IllegalArgumentException.class, () -> new LoraConfig(8, 16, 0, List.of("qq")));
        assertThrows(IllegalArgumentException.class, () -> new LoraConfig(8, 16, 0, List.of("q", "q")));
    }

    private static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }
}
