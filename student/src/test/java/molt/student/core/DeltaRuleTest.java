package molt.student.core;

import static molt.student.core.Numerics.assertClose;
import static molt.student.core.Numerics.assertGradient;
import static molt.student.core.Numerics.dot;
import static molt.student.core.Numerics.f32;
import static molt.student.core.Numerics.gauss;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Random;
import java.util.zip.GZIPInputStream;
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

    /**
     * Inputs at the edge of the gates' ranges: unit keys within a few degrees of one direction per head (every
     * pair's cosine above 0.999), beta from {@code betas} and g from {@code gs} (each drawn per token when there are
     * two), Gaussian q and v. With beta near 1 and g = 0 the chunk's (I + A) is close to I plus the all-ones strictly
     * lower matrix, the case that broke the product form of its inverse.
     */
    static double[][] extremeInputs(int t, double[] betas, double[] gs, long seed) {
        Random r = new Random(seed);
        double[] q = gauss(r, B * H * t * K, 1);
        double[] k = new double[B * H * t * K];
        for (int head = 0; head < B * H; head++) {
            double[] dir = gauss(r, K, 1);
            for (int i = head * t; i < head * t + t; i++) {
                double n = 0;
                for (int j = 0; j < K; j++) {
                    k[i * K + j] = dir[j] + 0.005 * Numerics.norm(dir) * r.nextGaussian();
                    n += k[i * K + j] * k[i * K + j];
                }
                for (int j = 0; j < K; j++) {
                    k[i * K + j] = (float) (k[i * K + j] / Math.sqrt(n));
                }
            }
        }
        double[] v = gauss(r, B * H * t * V, 1);
        double[] beta = new double[B * H * t];
        double[] g = new double[B * H * t];
        for (int i = 0; i < beta.length; i++) {
            beta[i] = betas[r.nextInt(betas.length)];
            g[i] = gs[r.nextInt(gs.length)];
        }
        return new double[][] {q, k, v, beta, g};
    }

    /** The smallest cosine between two keys of one head; keys [BH, T, dim], unit length. */
    static double minCosine(double[] k, int bh, int t, int dim) {
        double min = 1;
        for (int n = 0; n < bh; n++) {
            for (int i = 0; i < t; i++) {
                for (int j = 0; j < i; j++) {
                    double c = 0;
                    for (int d = 0; d < dim; d++) {
                        c += k[(n * t + i) * dim + d] * k[(n * t + j) * dim + d];
                    }
                    min = Math.min(min, c);
                }
            }
        }
        return min;
    }

    /**
     * Checks the chunked form (output, final state, every input's gradient) and the one-step recurrence (output,
     * final state) against {@link DeltaRuleReference} in double precision, for inputs {@code in} = q, k, v, beta, g
     * of {@code b} x {@code h} heads, and that no gradient entry is a NaN or an infinity.
     */
    static void checkAgainstReference(double[][] in, int b, int h, int t, int kd, int vd, int chunk, double scale,
                                      double tol, double gradTol, long seed) {
        double[][] ref = DeltaRuleReference.run(b * h, t, kd, vd, in[0], in[1], in[2], in[3], in[4], scale);
        Random r = new Random(seed);
        double[] w = gauss(r, b * h * t * vd, 1);
        Shape[] shapes = {new Shape(b, h, t, kd), new Shape(b, h, t, kd), new Shape(b, h, t, vd), new Shape(b, h, t),
            new Shape(b, h, t)};
        float[][] grads = new float[5][];
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray[] a = new NDArray[5];
            for (int i = 0; i < 5; i++) {
                a[i] = m.create(f32(in[i]), shapes[i]);
                a[i].setRequiresGradient(true);
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDList res = DeltaRule.chunked(m, a[0], a[1], a[2], a[3], a[4], (float) scale, null, chunk);
                assertClose(res.get(0).toFloatArray(), ref[0], tol, "chunked output");
                assertClose(res.get(1).toFloatArray(), ref[1], tol, "chunked state");
                gc.backward(res.get(0).mul(m.create(f32(w), shapes[2])).sum());
            }
            for (int i = 0; i < 5; i++) {
                grads[i] = a[i].getGradient().toFloatArray();
                for (float x : grads[i]) {
                    assertTrue(Float.isFinite(x), "gradient of input " + i + " holds " + x);
                }
            }
            NDArray s = m.zeros(new Shape(b, h, kd, vd));
            float[] rec = new float[b * h * t * vd];
            for (int i = 0; i < t; i++) {
                String at = ":, :, " + i + ":" + (i + 1);
                NDList o = DeltaRule.step(a[0].get(at), a[1].get(at), a[2].get(at), a[3].get(at), a[4].get(at),
                        (float) scale, s);
                s = o.get(1);
                Numerics.putStep(o.get(0).toFloatArray(), rec, t, i, vd);
            }
            assertClose(rec, ref[0], tol, "step output");
            assertClose(s.toFloatArray(), ref[1], tol, "step state");
        }
        for (int which = 0; which < 5; which++) {
            assertGradient(grads[which], in[which], 6, r,
                () -> dot(DeltaRuleReference.run(b * h, t, kd, vd, in[0], in[1], in[2], in[3], in[4], scale)[0], w),
                gradTol, "input " + which);
        }
    }

    @ParameterizedTest(name = "beta from [{0}], g from [{1}]")
    @CsvSource(delimiter = ';', value = {"1; 0", "0.9999; 0", "0.0001; 0", "1; -50", "0.0001 0.9999; 0 -50",
        "1 0.0001; 0", "1; 0 -50"})
    void extremeGatesAndNearParallelKeysAtChunk64(String betas, String gs) {
        int t = 150; // two full chunks of 64 and a ragged one
        double[][] in = extremeInputs(t, parse(betas), parse(gs), betas.hashCode() * 31L + gs.hashCode());
        assertTrue(minCosine(in[1], B * H, t, K) > 0.999, "keys are not near-parallel");
        checkAgainstReference(in, B, H, t, K, V, 64, 0.5, 1e-4, 1e-3, 5);
    }

    private static double[] parse(String values) {
        return java.util.Arrays.stream(values.trim().split(" +")).mapToDouble(x -> (float) Double.parseDouble(x))
                .toArray();
    }

    /**
     * The inputs of Gated DeltaNet's first layer, head 3, first 128 tokens, at the attention-transfer step where the
     * quickstart (lr 1e-2) hit a NaN loss with the product-form inverse (keys' median cosine 0.977, beta 0.62-0.89,
     * g -0.013 to -0.002): there the inverse was off by 7e7 with entries that are at most 1.
     */
    @Test
    void replaysTheQuickstartNaNInputs() throws IOException {
        double[][] in;
        int t;
        int kd;
        int vd;
        try (InputStream raw = DeltaRuleTest.class.getResourceAsStream("gated-deltanet-quickstart-step23.bin.gz")) {
            assertNotNull(raw, "missing resource");
            DataInputStream d = new DataInputStream(new GZIPInputStream(raw));
            t = d.readInt();
            kd = d.readInt();
            vd = d.readInt();
            int[] sizes = {t * kd, t * kd, t * vd, t, t};
            in = new double[5][];
            for (int i = 0; i < 5; i++) {
                in[i] = new double[sizes[i]];
                for (int j = 0; j < sizes[i]; j++) {
                    in[i][j] = d.readFloat();
                }
            }
        }
        checkAgainstReference(in, 1, 1, t, kd, vd, 64, 1 / Math.sqrt(kd), 1e-4, 1e-3, 7);
    }
}
