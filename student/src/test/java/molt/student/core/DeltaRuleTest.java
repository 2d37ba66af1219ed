package molt.student.core;

import static molt.student.core.Numerics.assertClose;
import static molt.student.core.Numerics.assertGradient;
import static molt.student.core.Numerics.dot;
import static molt.student.core.Numerics.f32;
import static molt.student.core.Numerics.gauss;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The chunked gated delta rule (UT transform) against a token loop in double precision. */
class DeltaRuleTest {
    private static final int B = 2;
    private static final int H = 2;
    private static final int K = 4;
    private static final int V = 3;

    static double[][] naive(int t, double[] q, double[] k, double[] v, double[] beta, double[] g, double scale) {
        return DeltaRuleReference.run(B * H, t, K, V, q, k, v, beta, g, scale);
    }

    /** Unit-norm keys (as Gated DeltaNet's L2 norm makes them), betas in (0, 1), log-decays <= 0. */
    static double[][] inputs(int t, long seed) {
        Random r = new Random(seed);
        double[] q = gauss(r, B * H * t * K, 1);
        double[] k = gauss(r, B * H * t * K, 1);
        for (int i = 0; i < B * H * t; i++) {
            double n = 0;
            for (int j = 0; j < K; j++) {
                n += k[i * K + j] * k[i * K + j];
            }
            for (int j = 0; j < K; j++) {
                k[i * K + j] = (float) (k[i * K + j] / Math.sqrt(n));
            }
        }
        double[] v = gauss(r, B * H * t * V, 1);
        double[] beta = new double[B * H * t];
        double[] g = new double[B * H * t];
        for (int i = 0; i < beta.length; i++) {
            beta[i] = (float) (0.1 + 0.8 * r.nextDouble());
            g[i] = (float) (-0.3 * r.nextDouble());
        }
        return new double[][] {q, k, v, beta, g};
    }

    @ParameterizedTest(name = "T={0} C={1}")
    @CsvSource({"1, 16", "63, 16", "100, 32", "257, 64", "257, 16"})
    void chunkedAndStepMatchTheTokenLoop(int t, int chunk) {
        double[][] in = inputs(t, t + chunk);
        double[][] ref = naive(t, in[0], in[1], in[2], in[3], in[4], 0.5);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray q = m.create(f32(in[0]), new Shape(B, H, t, K));
            NDArray k = m.create(f32(in[1]), new Shape(B, H, t, K));
            NDArray v = m.create(f32(in[2]), new Shape(B, H, t, V));
            NDArray beta = m.create(f32(in[3]), new Shape(B, H, t));
            NDArray g = m.create(f32(in[4]), new Shape(B, H, t));
            NDList r = DeltaRule.chunked(m, q, k, v, beta, g, 0.5f, null, chunk);
            assertClose(r.get(0).toFloatArray(), ref[0], 1e-4, "chunked");
            assertClose(r.get(1).toFloatArray(), ref[1], 1e-4, "chunked state");
            NDArray s = m.zeros(new Shape(B, H, K, V));
            float[] rec = new float[B * H * t * V];
            for (int i = 0; i < t; i++) {
                String at = ":, :, " + i + ":" + (i + 1);
                NDList o = DeltaRule.step(q.get(at), k.get(at), v.get(at), beta.get(at), g.get(at), 0.5f, s);
                s = o.get(1);
                Numerics.putStep(o.get(0).toFloatArray(), rec, t, i, V);
            }
            assertClose(rec, ref[0], 1e-4, "step");
            assertClose(s.toFloatArray(), ref[1], 1e-4, "step state");
        }
    }

    @Test
    void gradientsMatchFiniteDifferences() {
        int t = 50;
        double[][] in = inputs(t, 4);
        Random r = new Random(8);
        double[] w = gauss(r, B * H * t * V, 1);
        float[][] grads = new float[5][];
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Shape[] shapes = {new Shape(B, H, t, K), new Shape(B, H, t, K), new Shape(B, H, t, V), new Shape(B, H, t),
                new Shape(B, H, t)};
            NDArray[] a = new NDArray[5];
            for (int i = 0; i < 5; i++) {
                a[i] = m.create(f32(in[i]), shapes[i]);
                a[i].setRequiresGradient(true);
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = DeltaRule.chunked(m, a[0], a[1], a[2], a[3], a[4], 0.5f, null, 16).get(0);
                gc.backward(out.mul(m.create(f32(w), shapes[2])).sum());
            }
            for (int i = 0; i < 5; i++) {
                grads[i] = a[i].getGradient().toFloatArray();
            }
        }
        for (int which = 0; which < 5; which++) {
            assertGradient(grads[which], in[which], 6, r,
                () -> dot(naive(t, in[0], in[1], in[2], in[3], in[4], 0.5)[0], w), 1e-3, "input " + which);
        }
    }
}
