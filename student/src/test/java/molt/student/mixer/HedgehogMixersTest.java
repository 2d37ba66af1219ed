package molt.student.mixer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import molt.teacher.model.AttentionCore;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Chunked vs recurrent vs the double-precision reference, on outputs, final states and gradients. */
class HedgehogMixersTest {
    private static final int B = 2;
    private static final int H = 2;
    private static final int D = 8;
    private static final int F = 4;
    private static final int W = 16;
    private static final double TOL = 1e-4;

    /** Random inputs and parameters for one case, as flat arrays. */
    static final class Case {
        final int t;
        final double[] q;
        final double[] k;
        final double[] v;
        final double[] wq;
        final double[] wk;
        final double[] f;
        final double[] g;

        Case(int t, long seed, double qkScale) {
            Random r = new Random(seed);
            this.t = t;
            q = gauss(r, B * H * t * D, qkScale);
            k = gauss(r, B * H * t * D, qkScale);
            v = gauss(r, B * H * t * D, 1);
            wq = gauss(r, H * D * F, 0.5);
            wk = gauss(r, H * D * F, 0.5);
            f = gauss(r, H, 1);
            g = gauss(r, B * H * t * D, 1);
        }

        private static double[] gauss(Random r, int n, double s) {
            double[] x = new double[n];
            for (int i = 0; i < n; i++) {
                x[i] = (float) (r.nextGaussian() * s); // representable in fp32, so both sides see the same inputs
            }
            return x;
        }
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
        // Relative error, with the reference's norm floored at 1e-3 so an all-zero reference (a gradient that
        // vanishes exactly, e.g. at T = 1) is compared absolutely.
        return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-3);
    }

    private static Mixer mixer(NDManager m, String name, int chunk, Case c) {
        MixerSettings s = new MixerSettings(F, W, chunk, -2.197);
        Mixer mx = name.equals(HedgehogMixer.NAME) ? new HedgehogMixer(m, H, D, s) : new HedgehogWindowMixer(m, H, D, s);
        mx.parameters().get("feature_map_q.weight").set(f32(c.wq));
        mx.parameters().get("feature_map_k.weight").set(f32(c.wk));
        if (mx.parameters().containsKey("window_factor")) {
            mx.parameters().get("window_factor").set(f32(c.f));
        }
        return mx;
    }

    private static double[] reference(String name, Case c) {
        HedgehogReference ref = new HedgehogReference(B, H, c.t, D, F);
        return name.equals(HedgehogMixer.NAME) ? ref.linear(c.q, c.k, c.v, c.wq, c.wk)
                : ref.window(c.q, c.k, c.v, c.wq, c.wk, c.f, W);
    }

    private static NDArray input(NDManager m, double[] x, int t) {
        return m.create(f32(x), new Shape(B, H, t, D));
    }

    @ParameterizedTest(name = "{0} T={1} C={2}")
    @CsvSource({
        "hedgehog, 1, 16", "hedgehog, 63, 16", "hedgehog, 100, 32", "hedgehog, 257, 64", "hedgehog, 257, 16",
        "hedgehog_window, 1, 16", "hedgehog_window, 63, 16", "hedgehog_window, 100, 32",
        "hedgehog_window, 257, 64", "hedgehog_window, 257, 16", "hedgehog_window, 17, 16"})
    void chunkedRecurrentAndReferenceAgree(String name, int t, int chunk) {
        Case c = new Case(t, 31L * t + chunk, 1.0);
        double[] want = reference(name, c);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer mx = mixer(m, name, chunk, c);
            NDArray q = input(m, c.q, t);
            NDArray k = input(m, c.k, t);
            NDArray v = input(m, c.v, t);
            AttentionCore.Output out = mx.forward(m, AttentionInput.qkv(q, k, v), true);
            assertEquals(new Shape(B, H, t, D), out.out().getShape());
            double err = relErr(out.out().toFloatArray(), want);
            assertTrue(err < TOL, name + " chunked vs reference: " + err);

            float[] rec = new float[B * H * t * D];
            try (AttentionState st = mx.newState()) {
                for (int i = 0; i < t; i++) {
                    String at = ":, :, " + i + ":" + (i + 1);
                    float[] y = mx.step(m, st, AttentionInput.qkv(q.get(at), k.get(at), v.get(at))).toFloatArray();
                    for (int bh = 0; bh < B * H; bh++) {
                        System.arraycopy(y, bh * D, rec, (bh * t + i) * D, D);
                    }
                }
                double errRec = relErr(rec, want);
                assertTrue(errRec < TOL, name + " recurrent vs reference: " + errRec);
                compareStates(name, c, (HedgehogState) out.state(), (HedgehogState) st);
            }
            out.state().close();
        }
    }

    private static void compareStates(String name, Case c, HedgehogState chunked, HedgehogState recurrent) {
        boolean windowed = name.equals(HedgehogWindowMixer.NAME);
        int upTo = windowed ? Math.max(0, c.t - W) : c.t;
        double[][] ref = new HedgehogReference(B, H, c.t, D, F).state(c.k, c.v, c.wk, upTo);
        if (upTo > 0) {
            assertTrue(relErr(chunked.linearState().toFloatArray(), ref[0]) < TOL, "chunked S");
            assertTrue(relErr(recurrent.linearState().toFloatArray(), ref[0]) < TOL, "recurrent S");
            assertTrue(relErr(chunked.normalizer().toFloatArray(), ref[1]) < TOL, "chunked z");
            assertTrue(relErr(recurrent.normalizer().toFloatArray(), ref[1]) < TOL, "recurrent z");
        } else {
            assertEquals(0f, chunked.linearState().abs().max().getFloat());
        }
        if (windowed) {
            int n = Math.min(W, c.t);
            assertEquals(new Shape(B, H, n, D), chunked.bufferKeys().getShape());
            assertEquals(new Shape(B, H, n, D), recurrent.bufferKeys().getShape());
            float[] a = chunked.bufferValues().toFloatArray();
            float[] b = recurrent.bufferValues().toFloatArray();
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i], b[i], 0f);
            }
        }
    }

    @ParameterizedTest(name = "{0} T={1} C={2}")
    @CsvSource({"hedgehog, 63, 16", "hedgehog, 100, 32", "hedgehog_window, 63, 16", "hedgehog_window, 100, 32",
        "hedgehog_window, 1, 16"})
    void gradientsMatchFiniteDifferencesOfTheReference(String name, int t, int chunk) {
        Case c = new Case(t, 7L * t + chunk, 1.0);
        Map<String, float[]> grads = new LinkedHashMap<>();
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer mx = mixer(m, name, chunk, c);
            NDArray q = input(m, c.q, t);
            NDArray k = input(m, c.k, t);
            NDArray v = input(m, c.v, t);
            for (NDArray x : new NDArray[] {q, k, v}) {
                x.setRequiresGradient(true);
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = mx.forward(m, AttentionInput.qkv(q, k, v), false).out();
                gc.backward(out.mul(input(m, c.g, t)).sum());
            }
            grads.put("q", q.getGradient().toFloatArray());
            grads.put("k", k.getGradient().toFloatArray());
            grads.put("v", v.getGradient().toFloatArray());
            for (Map.Entry<String, NDArray> p : mx.parameters().entrySet()) {
                grads.put(p.getKey(), p.getValue().getGradient().toFloatArray());
            }
        }
        Random r = new Random(t);
        for (Map.Entry<String, float[]> e : grads.entrySet()) {
            double[] base = switch (e.getKey()) {
                case "q" -> c.q;
                case "k" -> c.k;
                case "v" -> c.v;
                case "feature_map_q.weight" -> c.wq;
                case "feature_map_k.weight" -> c.wk;
                default -> c.f;
            };
            List<Integer> idx = new ArrayList<>();
            for (int i = 0; i < Math.min(8, base.length); i++) {
                idx.add(r.nextInt(base.length));
            }
            float[] got = new float[idx.size()];
            double[] fd = new double[idx.size()];
            for (int j = 0; j < idx.size(); j++) {
                int i = idx.get(j);
                got[j] = e.getValue()[i];
                double h = 1e-5;
                double orig = base[i];
                base[i] = orig + h;
                double up = loss(name, c);
                base[i] = orig - h;
                double down = loss(name, c);
                base[i] = orig;
                fd[j] = (up - down) / (2 * h);
            }
            double err = relErr(got, fd);
            assertTrue(err < 1e-3, name + " d/d" + e.getKey() + " vs finite differences: " + err);
        }
    }

    private static double loss(String name, Case c) {
        double[] y = reference(name, c);
        double l = 0;
        for (int i = 0; i < y.length; i++) {
            l += y[i] * c.g[i];
        }
        return l;
    }

    @Test
    void chunkSizeDoesNotChangeGradients() {
        Case c = new Case(70, 5, 1.0);
        float[][] gq = new float[3][];
        int[] chunks = {16, 32, 64};
        for (int i = 0; i < 3; i++) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                Mixer mx = mixer(m, HedgehogWindowMixer.NAME, chunks[i], c);
                NDArray q = input(m, c.q, 70);
                q.setRequiresGradient(true);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray out = mx.forward(m, AttentionInput.qkv(q, input(m, c.k, 70), input(m, c.v, 70)), false).out();
                    gc.backward(out.mul(input(m, c.g, 70)).sum());
                }
                gq[i] = q.getGradient().toFloatArray();
            }
        }
        double[] ref = new double[gq[0].length];
        for (int i = 0; i < ref.length; i++) {
            ref[i] = gq[0][i];
        }
        assertTrue(relErr(gq[1], ref) < 1e-5);
        assertTrue(relErr(gq[2], ref) < 1e-5);
    }

    @Test
    void largeScoresDoNotOverflow() {
        Case c = new Case(100, 9, 12.0); // q.k / sqrt(D) reaches several hundred
        for (String name : new String[] {HedgehogMixer.NAME, HedgehogWindowMixer.NAME}) {
            double[] want = reference(name, c);
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                Mixer mx = mixer(m, name, 32, c);
                NDArray q = input(m, c.q, 100);
                q.setRequiresGradient(true);
                float[] y;
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray out = mx.forward(m, AttentionInput.qkv(q, input(m, c.k, 100), input(m, c.v, 100)), false).out();
                    y = out.toFloatArray();
                    gc.backward(out.sum());
                }
                for (float x : q.getGradient().toFloatArray()) {
                    assertFalse(Float.isNaN(x) || Float.isInfinite(x), name + ": non-finite gradient");
                }
                assertTrue(relErr(y, want) < TOL, name + ": " + relErr(y, want));
            }
        }
    }

    @Test
    void stateSizeIsIndependentOfContextAndDecodingLeaksNothing() {
        for (String name : new String[] {HedgehogMixer.NAME, HedgehogWindowMixer.NAME}) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                MixerSettings s = new MixerSettings(F, W, 16, -2.197);
                Mixer mx = name.equals(HedgehogMixer.NAME) ? new HedgehogMixer(m, H, D, s)
                        : new HedgehogWindowMixer(m, H, D, s);
                int params = m.getManagedArrays().size();
                Random r = new Random(1);
                long bytesAt512 = 0;
                int arraysAt64 = 0;
                try (HedgehogState st = (HedgehogState) mx.newState()) {
                    for (int i = 1; i <= 2048; i++) {
                        try (NDManager scope = m.newSubManager()) {
                            NDArray x = scope.randomNormal(new Shape(1, H, 1, D));
                            mx.step(scope, st, AttentionInput.qkv(x, x.mul(0.5), x.neg()));
                        }
                        if (i == 64) {
                            arraysAt64 = st.arrayCount();
                        }
                        if (i == 512) {
                            bytesAt512 = st.bytes();
                        }
                    }
                    assertEquals(bytesAt512, st.bytes(), name + ": state bytes at 512 vs 2048 tokens");
                    assertEquals(arraysAt64, st.arrayCount(), name + ": arrays held by the state");
                }
                assertEquals(params, m.getManagedArrays().size(), name + ": arrays left in the parameters' manager");
                r.nextInt();
            }
        }
    }

    @Test
    void windowNeedsChunksAtLeastAsLongAsTheWindow() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThrows(IllegalArgumentException.class,
                    () -> new HedgehogWindowMixer(m, H, D, new MixerSettings(F, 32, 16, -2.197)));
        }
    }
}
