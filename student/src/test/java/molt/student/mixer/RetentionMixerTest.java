package molt.student.mixer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.Random;
import molt.teacher.model.AttentionCore;
import molt.teacher.model.AttentionInput;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Retention: chunked vs recurrent vs the double reference on outputs, final state and gradients. */
class RetentionMixerTest {
    private static final int B = 2;
    private static final int H = 3;
    private static final int D = 8;

    private static double[] gauss(Random r, int n, double s) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * s);
        }
        return x;
    }

    private static float[] f32(double[] x) {
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = (float) x[i];
        }
        return y;
    }

    private static double relErr(float[] got, double[] want) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < want.length; i++) {
            num += (got[i] - want[i]) * (got[i] - want[i]);
            den += want[i] * want[i];
        }
        return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-3);
    }

    @ParameterizedTest(name = "T={0} C={1}")
    @CsvSource({"1, 16", "63, 16", "100, 32", "257, 64", "257, 16"})
    void chunkedRecurrentAndReferenceAgree(int t, int chunk) {
        Random r = new Random(t * 7L + chunk);
        double[] q = gauss(r, B * H * t * D, 1);
        double[] k = gauss(r, B * H * t * D, 1);
        double[] v = gauss(r, B * H * t * D, 1);
        double[] w = gauss(r, H * D, 1);
        double[][] ref = RetentionReference.run(B, H, t, D, q, k, v, w);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            RetentionMixer mx = new RetentionMixer(m, H, D, new MixerSettings(4, 4, chunk, -2.197));
            mx.parameters().get("output_norm.weight").set(f32(w));
            Shape s = new Shape(B, H, t, D);
            NDArray qa = m.create(f32(q), s);
            NDArray ka = m.create(f32(k), s);
            NDArray va = m.create(f32(v), s);
            AttentionCore.Output out = mx.forward(m, AttentionInput.qkv(qa, ka, va), true);
            assertTrue(relErr(out.out().toFloatArray(), ref[0]) < 1e-4, "chunked: " + relErr(out.out().toFloatArray(), ref[0]));
            RetentionMixer.RetentionState chunkState = (RetentionMixer.RetentionState) out.state();
            assertTrue(relErr(chunkState.state().toFloatArray(), ref[1]) < 1e-4, "chunked state");
            float[] rec = new float[B * H * t * D];
            try (RetentionMixer.RetentionState st = mx.newState()) {
                for (int i = 0; i < t; i++) {
                    String at = ":, :, " + i + ":" + (i + 1);
                    float[] y = mx.step(m, st, AttentionInput.qkv(qa.get(at), ka.get(at), va.get(at))).toFloatArray();
                    for (int bh = 0; bh < B * H; bh++) {
                        System.arraycopy(y, bh * D, rec, (bh * t + i) * D, D);
                    }
                }
                assertTrue(relErr(rec, ref[0]) < 1e-4, "recurrent: " + relErr(rec, ref[0]));
                assertTrue(relErr(st.state().toFloatArray(), ref[1]) < 1e-4, "recurrent state");
                assertEquals((long) B * H * D * D * 4, st.bytes());
            }
            chunkState.close();
        }
    }

    @ParameterizedTest(name = "T={0} C={1}")
    @CsvSource({"63, 16", "100, 32"})
    void gradientsMatchFiniteDifferencesOfTheReference(int t, int chunk) {
        Random r = new Random(t);
        double[] q = gauss(r, B * H * t * D, 1);
        double[] k = gauss(r, B * H * t * D, 1);
        double[] v = gauss(r, B * H * t * D, 1);
        double[] w = gauss(r, H * D, 1);
        double[] g = gauss(r, B * H * t * D, 1);
        float[][] grads = new float[4][];
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            RetentionMixer mx = new RetentionMixer(m, H, D, new MixerSettings(4, 4, chunk, -2.197));
            NDArray wa = mx.parameters().get("output_norm.weight");
            wa.set(f32(w));
            Shape s = new Shape(B, H, t, D);
            NDArray[] in = {m.create(f32(q), s), m.create(f32(k), s), m.create(f32(v), s)};
            for (NDArray x : in) {
                x.setRequiresGradient(true);
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = mx.forward(m, AttentionInput.qkv(in[0], in[1], in[2]), false).out();
                gc.backward(out.mul(m.create(f32(g), s)).sum());
            }
            for (int i = 0; i < 3; i++) {
                grads[i] = in[i].getGradient().toFloatArray();
            }
            grads[3] = wa.getGradient().toFloatArray();
        }
        double[][] bases = {q, k, v, w};
        for (int which = 0; which < 4; which++) {
            double[] base = bases[which];
            float[] got = new float[8];
            double[] fd = new double[8];
            for (int j = 0; j < 8; j++) {
                int i = r.nextInt(base.length);
                got[j] = grads[which][i];
                double orig = base[i];
                base[i] = orig + 1e-5;
                double up = dot(RetentionReference.run(B, H, t, D, q, k, v, w)[0], g);
                base[i] = orig - 1e-5;
                double down = dot(RetentionReference.run(B, H, t, D, q, k, v, w)[0], g);
                base[i] = orig;
                fd[j] = (up - down) / 2e-5;
            }
            assertTrue(relErr(got, fd) < 1e-3, "gradient " + which + ": " + relErr(got, fd));
        }
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    @Test
    void decodingStateStaysFlat() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            RetentionMixer mx = new RetentionMixer(m, H, D, MixerSettings.lolcats());
            int params = m.getManagedArrays().size();
            try (RetentionMixer.RetentionState st = mx.newState()) {
                long bytes = -1;
                for (int i = 0; i < 600; i++) {
                    try (NDManager scope = m.newSubManager()) {
                        NDArray x = scope.randomNormal(new Shape(1, H, 1, D));
                        mx.step(scope, st, AttentionInput.qkv(x, x, x));
                    }
                    if (i == 10) {
                        bytes = st.bytes();
                    }
                }
                assertEquals(bytes, st.bytes());
            }
            assertEquals(params, m.getManagedArrays().size());
        }
    }
}
