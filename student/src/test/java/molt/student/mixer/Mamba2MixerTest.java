package molt.student.mixer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import molt.teacher.model.AttentionCore;
import molt.teacher.model.AttentionInput;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Mamba-2: chunked vs recurrent vs the double reference, gradients, and a decoding state of fixed size. */
class Mamba2MixerTest {
    private static final int B = 2;
    private static final int H = 2;
    private static final int D = 4;
    private static final int M = 6;

    static double[] gauss(Random r, int n, double s) {
        return GlaMixerTest.gauss(r, n, s);
    }

    /** Inputs, and the mixer's initial parameters read back as doubles. */
    static final class Case {
        final int t;
        final double[] q;
        final double[] k;
        final double[] v;
        final double[] hidden;
        final double[] g;
        final Map<String, double[]> p = new LinkedHashMap<>();

        Case(int t, long seed, Mamba2Mixer mx) {
            Random r = new Random(seed);
            this.t = t;
            q = gauss(r, B * H * t * D, 1);
            k = gauss(r, B * H * t * D, 1);
            v = gauss(r, B * H * t * D, 1);
            hidden = gauss(r, B * t * M, 1);
            g = gauss(r, B * H * t * D, 1);
            for (Map.Entry<String, NDArray> e : mx.parameters().entrySet()) {
                float[] f = e.getValue().toFloatArray();
                double[] d = new double[f.length];
                for (int i = 0; i < f.length; i++) {
                    d[i] = f[i] + (e.getKey().equals("D") || e.getKey().equals("norm.weight") ? 0.3 * r.nextGaussian() : 0);
                    d[i] = (float) d[i];
                }
                p.put(e.getKey(), d);
                e.getValue().set(GlaMixerTest.f32(d));
            }
        }

        double[][] reference() {
            return Mamba2Reference.run(B, H, t, D, M, q, k, v, hidden, p);
        }

        AttentionInput input(NDManager m) {
            Shape s = new Shape(B, H, t, D);
            NDArray qa = m.create(GlaMixerTest.f32(q), s);
            NDArray ka = m.create(GlaMixerTest.f32(k), s);
            return new AttentionInput(m.create(GlaMixerTest.f32(hidden), new Shape(B, t, M)), qa, ka,
                    m.create(GlaMixerTest.f32(v), s), qa, ka);
        }
    }

    @ParameterizedTest(name = "T={0} C={1}")
    @CsvSource({"1, 16", "63, 16", "100, 32", "257, 64"})
    void chunkedRecurrentAndReferenceAgree(int t, int chunk) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mamba2Mixer mx = new Mamba2Mixer(m, H, D, M, new MixerSettings(4, 4, chunk, -2.197));
            Case c = new Case(t, t + 11L * chunk, mx);
            double[][] ref = c.reference();
            AttentionInput in = c.input(m);
            AttentionCore.Output out = mx.forward(m, in, true);
            double err = GlaMixerTest.relErr(out.out().toFloatArray(), ref[0]);
            assertTrue(err < 1e-4, "chunked: " + err);
            var chunkState = (Mamba2Mixer.Mamba2State) out.state();
            assertTrue(GlaMixerTest.relErr(chunkState.state().toFloatArray(), ref[1]) < 1e-4, "chunked state");
            float[] rec = new float[B * H * t * D];
            try (Mamba2Mixer.Mamba2State st = mx.newState()) {
                for (int i = 0; i < t; i++) {
                    String at = ":, :, " + i + ":" + (i + 1);
                    NDArray qa = in.q().get(at);
                    NDArray ka = in.k().get(at);
                    AttentionInput one = new AttentionInput(in.hidden().get(":, " + i + ":" + (i + 1)), qa, ka, in.v().get(at), qa, ka);
                    float[] y = mx.step(m, st, one).toFloatArray();
                    for (int bh = 0; bh < B * H; bh++) {
                        System.arraycopy(y, bh * D, rec, (bh * t + i) * D, D);
                    }
                }
                assertTrue(GlaMixerTest.relErr(rec, ref[0]) < 1e-4, "recurrent: " + GlaMixerTest.relErr(rec, ref[0]));
                assertTrue(GlaMixerTest.relErr(st.state().toFloatArray(), ref[1]) < 1e-4, "recurrent state");
                assertEquals(chunkState.bytes(), st.bytes(), "the conv windows are part of the state");
            }
            chunkState.close();
        }
    }

    @Test
    void gradientsMatchFiniteDifferencesOfTheReference() {
        List<String> names = List.of("A_log", "dt_bias", "conv_x.weight", "conv_c.bias", "z_proj.weight",
                "dt_proj.weight", "D", "norm.weight");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mamba2Mixer mx = new Mamba2Mixer(m, H, D, M, new MixerSettings(4, 4, 16, -2.197));
            Case c = new Case(40, 3, mx);
            AttentionInput in = c.input(m);
            in.v().setRequiresGradient(true);
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = mx.forward(m, in, false).out();
                gc.backward(out.mul(m.create(GlaMixerTest.f32(c.g), out.getShape())).sum());
            }
            Random r = new Random(2);
            for (String n : names) {
                float[] grad = mx.parameters().get(n).getGradient().toFloatArray();
                double[] base = c.p.get(n);
                float[] got = new float[4];
                double[] fd = new double[4];
                for (int j = 0; j < 4; j++) {
                    int i = r.nextInt(base.length);
                    got[j] = grad[i];
                    double orig = base[i];
                    base[i] = orig + 1e-5;
                    double up = dot(c.reference()[0], c.g);
                    base[i] = orig - 1e-5;
                    double down = dot(c.reference()[0], c.g);
                    base[i] = orig;
                    fd[j] = (up - down) / 2e-5;
                }
                assertTrue(GlaMixerTest.relErr(got, fd) < 1e-3, n + ": " + GlaMixerTest.relErr(got, fd));
            }
            float[] gv = in.v().getGradient().toFloatArray();
            float[] got = new float[4];
            double[] fd = new double[4];
            for (int j = 0; j < 4; j++) {
                int i = r.nextInt(c.v.length);
                got[j] = gv[i];
                double orig = c.v[i];
                c.v[i] = orig + 1e-5;
                double up = dot(c.reference()[0], c.g);
                c.v[i] = orig - 1e-5;
                double down = dot(c.reference()[0], c.g);
                c.v[i] = orig;
                fd[j] = (up - down) / 2e-5;
            }
            assertTrue(GlaMixerTest.relErr(got, fd) < 1e-3, "v: " + GlaMixerTest.relErr(got, fd));
        }
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }
}
