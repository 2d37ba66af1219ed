package molt.student.mixer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.List;
import java.util.Random;
import molt.teacher.model.AttentionCore;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** GLA (learned gate) and Liger's GLA: chunked vs recurrent vs the double reference; gradients. */
class GlaMixerTest {
    private static final int B = 2;
    private static final int H = 2;
    private static final int D = 8;
    private static final List<String> PARAMS = List.of("gate_down.weight", "gate_up.weight", "gate_up.bias",
            "output_norm.weight");

    static final class Case {
        final int t;
        final double[] q;
        final double[] k;
        final double[] v;
        final double[][] p = new double[4][];
        final double[] g;

        Case(int t, long seed, double qk) {
            Random r = new Random(seed);
            this.t = t;
            q = gauss(r, B * H * t * D, qk);
            k = gauss(r, B * H * t * D, qk);
            v = gauss(r, B * H * t * D, 1);
            p[0] = gauss(r, H * D * GlaMixer.RANK, 0.3);
            p[1] = gauss(r, H * GlaMixer.RANK * D, 0.3);
            p[2] = gauss(r, H * D, 1);
            p[3] = gauss(r, H * D, 1);
            g = gauss(r, B * H * t * D, 1);
        }

        double[][] reference(boolean liger) {
            return GlaReference.run(liger, B, H, t, D, q, k, v, p[0], p[1], p[2], p[3]);
        }
    }

    static double[] gauss(Random r, int n, double s) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * s);
        }
        return x;
    }

    static float[] f32(double[] x) {
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = (float) x[i];
        }
        return y;
    }

    static double relErr(float[] got, double[] want) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < want.length; i++) {
            num += (got[i] - want[i]) * (got[i] - want[i]);
            den += want[i] * want[i];
        }
        return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-3);
    }

    private static GlaMixer mixer(NDManager m, boolean liger, int chunk, Case c) {
        MixerSettings s = new MixerSettings(4, 4, chunk, -2.197);
        GlaMixer mx = liger ? GlaMixer.liger(m, H, D, s) : GlaMixer.learned(m, H, D, s);
        if (!liger) {
            for (int i = 0; i < 4; i++) {
                mx.parameters().get(PARAMS.get(i)).set(f32(c.p[i]));
            }
        }
        return mx;
    }

    @ParameterizedTest(name = "liger={0} T={1} C={2}")
    @CsvSource({"false, 1, 16", "false, 63, 16", "false, 100, 32", "false, 257, 64", "true, 63, 16", "true, 257, 32"})
    void chunkedRecurrentAndReferenceAgree(boolean liger, int t, int chunk) {
        Case c = new Case(t, t * 3L + chunk, 1.0);
        double[][] ref = c.reference(liger);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            GlaMixer mx = mixer(m, liger, chunk, c);
            Shape s = new Shape(B, H, t, D);
            NDArray q = m.create(f32(c.q), s);
            NDArray k = m.create(f32(c.k), s);
            NDArray v = m.create(f32(c.v), s);
            AttentionCore.Output out = mx.forward(m, AttentionInput.qkv(q, k, v), true);
            assertTrue(relErr(out.out().toFloatArray(), ref[0]) < 1e-4, "chunked " + relErr(out.out().toFloatArray(), ref[0]));
            var chunkState = (RetentionMixer.RetentionState) out.state();
            assertTrue(relErr(chunkState.state().toFloatArray(), ref[1]) < 1e-4, "chunked state");
            float[] rec = new float[B * H * t * D];
            try (var st = (RetentionMixer.RetentionState) mx.newState()) {
                for (int i = 0; i < t; i++) {
                    String at = ":, :, " + i + ":" + (i + 1);
                    float[] y = mx.step(m, st, AttentionInput.qkv(q.get(at), k.get(at), v.get(at))).toFloatArray();
                    for (int bh = 0; bh < B * H; bh++) {
                        System.arraycopy(y, bh * D, rec, (bh * t + i) * D, D);
                    }
                }
                assertTrue(relErr(rec, ref[0]) < 1e-4, "recurrent " + relErr(rec, ref[0]));
                assertTrue(relErr(st.state().toFloatArray(), ref[1]) < 1e-4, "recurrent state");
            }
            chunkState.close();
        }
    }

    @Test
    void gradientsMatchFiniteDifferencesOfTheReference() {
        Case c = new Case(70, 5, 1.0);
        float[][] grads = new float[7][];
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            GlaMixer mx = mixer(m, false, 32, c);
            Shape s = new Shape(B, H, 70, D);
            NDArray[] in = {m.create(f32(c.q), s), m.create(f32(c.k), s), m.create(f32(c.v), s)};
            for (NDArray x : in) {
                x.setRequiresGradient(true);
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = mx.forward(m, AttentionInput.qkv(in[0], in[1], in[2]), false).out();
                gc.backward(out.mul(m.create(f32(c.g), s)).sum());
            }
            for (int i = 0; i < 3; i++) {
                grads[i] = in[i].getGradient().toFloatArray();
            }
            for (int i = 0; i < 4; i++) {
                grads[3 + i] = mx.parameters().get(PARAMS.get(i)).getGradient().toFloatArray();
            }
        }
        double[][] bases = {c.q, c.k, c.v, c.p[0], c.p[1], c.p[2], c.p[3]};
        Random r = new Random(1);
        for (int which = 0; which < 7; which++) {
            float[] got = new float[6];
            double[] fd = new double[6];
            for (int j = 0; j < 6; j++) {
                int i = r.nextInt(bases[which].length);
                got[j] = grads[which][i];
                double orig = bases[which][i];
                bases[which][i] = orig + 1e-5;
                double up = dot(c.reference(false)[0], c.g);
                bases[which][i] = orig - 1e-5;
                double down = dot(c.reference(false)[0], c.g);
                bases[which][i] = orig;
                fd[j] = (up - down) / 2e-5;
            }
            assertTrue(relErr(got, fd) < 1e-3, "gradient " + which + ": " + relErr(got, fd));
        }
    }

    @Test
    void strongDecaysOverLongChunksStayFinite() {
        Case c = new Case(128, 9, 30.0); // logsigmoid(-30)/16 per step: exp(-G) would overflow in fp32 over a chunk
        double[][] ref = c.reference(true);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            GlaMixer mx = mixer(m, true, 64, c);
            Shape s = new Shape(B, H, 128, D);
            float[] y = mx.forward(m, AttentionInput.qkv(m.create(f32(c.q), s), m.create(f32(c.k), s),
                    m.create(f32(c.v), s)), false).out().toFloatArray();
            for (float x : y) {
                assertFalse(Float.isNaN(x) || Float.isInfinite(x));
            }
            assertTrue(relErr(y, ref[0]) < 1e-4, "relative error " + relErr(y, ref[0]));
            assertTrue(mx.parameters().isEmpty(), "Liger's GLA has no new parameters");
        }
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /** 0.5 x window softmax (w most recent tokens) + 0.5 x Liger's GLA, in double. */
    private static double[] ligerWindowReference(Case c, int w) {
        double[] gla = c.reference(true)[0];
        double[] out = new double[gla.length];
        int t = c.t;
        for (int bh = 0; bh < B * H; bh++) {
            for (int i = 0; i < t; i++) {
                int first = Math.max(0, i - w + 1);
                double max = Double.NEGATIVE_INFINITY;
                double[] s = new double[i - first + 1];
                for (int j = first; j <= i; j++) {
                    double dot = 0;
                    for (int e = 0; e < D; e++) {
                        dot += c.q[(bh * t + i) * D + e] * c.k[(bh * t + j) * D + e];
                    }
                    s[j - first] = dot / Math.sqrt(D);
                    max = Math.max(max, s[j - first]);
                }
                double z = 0;
                for (int j = 0; j < s.length; j++) {
                    s[j] = Math.exp(s[j] - max);
                    z += s[j];
                }
                for (int e = 0; e < D; e++) {
                    double acc = 0;
                    for (int j = first; j <= i; j++) {
                        acc += s[j - first] / z * c.v[(bh * t + j) * D + e];
                    }
                    int at = (bh * t + i) * D + e;
                    out[at] = 0.5 * acc + 0.5 * gla[at];
                }
            }
        }
        return out;
    }

    @ParameterizedTest(name = "T={0} C={1}")
    @CsvSource({"1, 16", "63, 16", "100, 32", "257, 64"})
    void ligerWindowMixMatchesItsReference(int t, int chunk) {
        Case c = new Case(t, t + 5L * chunk, 1.0);
        double[] want = ligerWindowReference(c, 16);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            LigerWindowMixer mx = new LigerWindowMixer(m, H, D, new MixerSettings(4, 16, chunk, -2.197));
            Shape s = new Shape(B, H, t, D);
            NDArray q = m.create(f32(c.q), s);
            NDArray k = m.create(f32(c.k), s);
            NDArray v = m.create(f32(c.v), s);
            AttentionCore.Output out = mx.forward(m, AttentionInput.qkv(q, k, v), true);
            assertTrue(relErr(out.out().toFloatArray(), want) < 1e-4, "chunked " + relErr(out.out().toFloatArray(), want));
            float[] rec = new float[B * H * t * D];
            try (AttentionState st = mx.newState()) {
                for (int i = 0; i < t; i++) {
                    String at = ":, :, " + i + ":" + (i + 1);
                    float[] y = mx.step(m, st, AttentionInput.qkv(q.get(at), k.get(at), v.get(at))).toFloatArray();
                    for (int bh = 0; bh < B * H; bh++) {
                        System.arraycopy(y, bh * D, rec, (bh * t + i) * D, D);
                    }
                }
                assertTrue(relErr(rec, want) < 1e-4, "recurrent " + relErr(rec, want));
                assertEquals(out.state().bytes(), st.bytes());
            }
            out.state().close();
        }
    }
}
