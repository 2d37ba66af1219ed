package molt.student.mixer;

import static molt.student.core.Numerics.assertClose;
import static molt.student.core.Numerics.gauss;
import static molt.student.core.Numerics.relErr;
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
import java.util.List;
import java.util.Random;
import molt.student.core.HedgehogState;
import molt.student.mixer.MixerHarness.Case;
import molt.teacher.model.AttentionInput;
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

    /** Random inputs, feature maps and window factors for one case. */
    private static Case hedgehogCase(int t, long seed, double qkScale) {
        Random r = new Random(seed);
        Case c = new Case(B, H, t, D).qkv(r, qkScale);
        c.params.put("feature_map_q.weight", gauss(r, H * D * F, 0.5));
        c.params.put("feature_map_k.weight", gauss(r, H * D * F, 0.5));
        c.params.put("window_factor", gauss(r, H, 1));
        return c.loss(r);
    }

    private static Mixer mixer(NDManager m, String name, int chunk) {
        MixerSettings s = new MixerSettings(F, W, chunk, -2.197);
        return name.equals(HedgehogMixer.NAME) ? new HedgehogMixer(m, H, D, s) : new HedgehogWindowMixer(m, H, D, s);
    }

    private static double[] reference(String name, Case c) {
        HedgehogReference ref = new HedgehogReference(B, H, c.t, D, F);
        double[] wq = c.params.get("feature_map_q.weight");
        double[] wk = c.params.get("feature_map_k.weight");
        return name.equals(HedgehogMixer.NAME) ? ref.linear(c.q, c.k, c.v, wq, wk)
                : ref.window(c.q, c.k, c.v, wq, wk, c.params.get("window_factor"), W);
    }

    @ParameterizedTest(name = "{0} T={1} C={2}")
    @CsvSource({
        "hedgehog, 1, 16", "hedgehog, 63, 16", "hedgehog, 100, 32", "hedgehog, 257, 64", "hedgehog, 257, 16",
        "hedgehog_window, 1, 16", "hedgehog_window, 63, 16", "hedgehog_window, 100, 32",
        "hedgehog_window, 257, 64", "hedgehog_window, 257, 16", "hedgehog_window, 17, 16"})
    void chunkedRecurrentAndReferenceAgree(String name, int t, int chunk) {
        Case c = hedgehogCase(t, 31L * t + chunk, 1.0);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            MixerHarness.assertFormsAgree(m, c.load(mixer(m, name, chunk)), c, reference(name, c), TOL,
                (chunked, recurrent) -> compareStates(name, c, (HedgehogState) chunked, (HedgehogState) recurrent));
        }
    }

    private static void compareStates(String name, Case c, HedgehogState chunked, HedgehogState recurrent) {
        boolean windowed = name.equals(HedgehogWindowMixer.NAME);
        int upTo = windowed ? Math.max(0, c.t - W) : c.t;
        double[][] ref = new HedgehogReference(B, H, c.t, D, F).state(c.k, c.v, c.params.get("feature_map_k.weight"),
                upTo);
        if (upTo > 0) {
            assertClose(chunked.linearState().toFloatArray(), ref[0], TOL, "chunked S");
            assertClose(recurrent.linearState().toFloatArray(), ref[0], TOL, "recurrent S");
            assertClose(chunked.normalizer().toFloatArray(), ref[1], TOL, "chunked z");
            assertClose(recurrent.normalizer().toFloatArray(), ref[1], TOL, "recurrent z");
        } else {
            assertEquals(0f, chunked.linearState().abs().max().getFloat());
        }
        if (windowed) {
            int n = Math.min(W, c.t);
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) { // the window's views
            assertEquals(new Shape(B, H, n, D), chunked.window().keys(m).getShape());
            assertEquals(new Shape(B, H, n, D), recurrent.window().keys(m).getShape());
            float[] a = chunked.window().values(m).toFloatArray();
            float[] b = recurrent.window().values(m).toFloatArray();
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i], b[i], 0f);
            }
            }
        }
    }

    @ParameterizedTest(name = "{0} T={1} C={2}")
    @CsvSource({"hedgehog, 63, 16", "hedgehog, 100, 32", "hedgehog_window, 63, 16", "hedgehog_window, 100, 32",
        "hedgehog_window, 1, 16"})
    void gradientsMatchFiniteDifferencesOfTheReference(String name, int t, int chunk) {
        Case c = hedgehogCase(t, 7L * t + chunk, 1.0);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer mx = c.load(mixer(m, name, chunk));
            List<String> names = new ArrayList<>(List.of("q", "k", "v"));
            names.addAll(mx.parameters().keySet());
            MixerHarness.assertGradients(m, mx, c, names, n -> Math.min(8, n), new Random(t), x -> reference(name, x),
                    1e-3);
        }
    }

    @Test
    void chunkSizeDoesNotChangeGradients() {
        Case c = hedgehogCase(70, 5, 1.0);
        float[][] gq = new float[3][];
        int[] chunks = {16, 32, 64};
        for (int i = 0; i < 3; i++) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                gq[i] = MixerHarness.gradients(m, c.load(mixer(m, HedgehogWindowMixer.NAME, chunks[i])), c,
                        List.of("q")).get("q");
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
        Case c = hedgehogCase(100, 9, 12.0); // q.k / sqrt(D) reaches several hundred
        for (String name : new String[] {HedgehogMixer.NAME, HedgehogWindowMixer.NAME}) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                Mixer mx = c.load(mixer(m, name, 32));
                AttentionInput in = c.input(m);
                in.q().setRequiresGradient(true);
                float[] y;
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray out = mx.forward(m, in, false).out();
                    y = out.toFloatArray();
                    gc.backward(out.sum());
                }
                for (float x : in.q().getGradient().toFloatArray()) {
                    assertFalse(Float.isNaN(x) || Float.isInfinite(x), name + ": non-finite gradient");
                }
                assertClose(y, reference(name, c), TOL, name);
            }
        }
    }

    @Test
    void stateSizeIsIndependentOfContextAndDecodingLeaksNothing() {
        for (String name : new String[] {HedgehogMixer.NAME, HedgehogWindowMixer.NAME}) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                MixerHarness.assertDecodingFromEmptyFlat(m, mixer(m, name, 16), 2048, 512, 64,
                        MixerHarness.tokens(H, D, 0.5, -1));
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
