package molt.student.mixer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import molt.student.core.WindowedState;
import molt.student.mixer.MixerHarness.Case;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The windowed SSM and delta-rule mixers and the window alone: chunked vs recurrent vs a double reference built from
 * the inner mixer's own reference and a plain-loop sliding-window softmax, gradients, and a decoding state that stops
 * growing once the window is full.
 */
class WindowedMixersTest {
    private static final int B = 2;
    private static final int H = 2;
    private static final int D = 4;
    private static final int M = 6;
    private static final int W = 5;

    private static Mixer mixer(NDManager m, String name, int chunk) {
        return MixerRegistry.create(name, m, H, D, M, new MixerSettings(4, W, chunk, -2.197));
    }

    /** Inputs and parameters, with noise on those that start at a constant (the window factors included). */
    private static Case windowCase(Mixer mx, int t, long seed) {
        Set<String> perturbed = mx.name().startsWith("mamba2") ? Set.of("D", "norm.weight", "window_factor")
                : Set.of("norm.weight", "window_factor");
        return Case.fromMixer(mx, B, H, t, D, M, seed, perturbed);
    }

    /** Softmax over the w most recent tokens t-w+1..t, scores q.k / sqrt(D), in double: [B, H, T, D]. */
    static double[] windowReference(int t, double[] q, double[] k, double[] v, int w) {
        double[] out = new double[B * H * t * D];
        for (int bh = 0; bh < B * H; bh++) {
            for (int i = 0; i < t; i++) {
                int from = Math.max(0, i - w + 1);
                double[] s = new double[i - from + 1];
                for (int j = from; j <= i; j++) {
                    double dot = 0;
                    for (int x = 0; x < D; x++) {
                        dot += q[(bh * t + i) * D + x] * k[(bh * t + j) * D + x];
                    }
                    s[j - from] = dot / Math.sqrt(D);
                }
                double[] p = ReferenceMath.softmax(s);
                for (int j = from; j <= i; j++) {
                    for (int x = 0; x < D; x++) {
                        out[(bh * t + i) * D + x] += p[j - from] * v[(bh * t + j) * D + x];
                    }
                }
            }
        }
        return out;
    }

    /** (1 - g_h) inner + g_h window, g_h = sigmoid(f_h); the window alone for window_only. */
    static double[] reference(String name, Case c) {
        double[] window = windowReference(c.t, c.q, c.k, c.v, W);
        if (name.equals(WindowedMixer.WINDOW_ONLY)) {
            return window;
        }
        double[] inner = name.startsWith("mamba2")
                ? Mamba2Reference.run(B, H, c.t, D, M, c.q, c.k, c.v, c.hidden, c.params)[0]
                : GatedDeltaNetReference.run(B, H, c.t, D, M, c.q, c.k, c.v, c.hidden, c.params)[0];
        double[] f = c.params.get("window_factor");
        double[] out = new double[inner.length];
        for (int i = 0; i < out.length; i++) {
            int h = (i / (c.t * D)) % H;
            double g = 1 / (1 + Math.exp(-f[h]));
            out[i] = (1 - g) * inner[i] + g * window[i];
        }
        return out;
    }

    @ParameterizedTest(name = "{0} T={1} C={2}")
    @CsvSource({"mamba2_window, 1, 8", "mamba2_window, 37, 8", "mamba2_window, 100, 32",
        "gated_deltanet_window, 1, 8", "gated_deltanet_window, 37, 8", "gated_deltanet_window, 100, 32",
        "window_only, 1, 8", "window_only, 37, 8", "window_only, 100, 32"})
    void chunkedRecurrentAndReferenceAgree(String name, int t, int chunk) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer mx = mixer(m, name, chunk);
            Case c = windowCase(mx, t, t + 7L * chunk);
            MixerHarness.assertFormsAgree(m, mx, c, reference(name, c), 1e-4, (chunked, recurrent) ->
                    assertEquals(chunked.bytes(), recurrent.bytes(), name + ": state bytes of the two forms"));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba2_window", "gated_deltanet_window"})
    void gradientsMatchFiniteDifferencesOfTheReference(String name) {
        List<String> names = name.startsWith("mamba2") ? List.of("window_factor", "A_log", "dt_bias", "D", "q", "k", "v")
                : List.of("window_factor", "A_log", "beta_proj.weight", "q", "k", "v");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer mx = mixer(m, name, 16);
            Case c = windowCase(mx, 40, 5);
            MixerHarness.assertGradients(m, mx, c, names, n -> Math.min(n, 4), new Random(3),
                    x -> reference(name, x), 1e-3);
        }
    }

    @Test
    void theWindowedFormHasTheInnerParametersThenTheWindowFactor() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer inner = mixer(m, "mamba2", 8);
            Mixer windowed = mixer(m, "mamba2_window", 8);
            List<String> names = new java.util.ArrayList<>(inner.parameters().keySet());
            names.add("window_factor");
            assertEquals(names, List.copyOf(windowed.parameters().keySet()));
            assertTrue(mixer(m, WindowedMixer.WINDOW_ONLY, 8).parameters().isEmpty());
            assertEquals(Map.of(), MixerRegistry.parameterShapes(WindowedMixer.WINDOW_ONLY, H, D, M,
                    new MixerSettings(4, W, 8, -2.197)));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba2_window", "gated_deltanet_window", "window_only"})
    void decodingStateStopsGrowingOnceTheWindowIsFull(String name) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer mx = mixer(m, name, 8);
            mx.setTrainable(false);
            long[] bytes = new long[3];
            try (WindowedState st = (WindowedState) mx.newState()) {
                for (int i = 1; i <= 3 * W; i++) {
                    try (NDManager scope = m.newSubManager()) {
                        ai.djl.ndarray.NDArray x = scope.randomNormal(new ai.djl.ndarray.types.Shape(1, H, 1, D));
                        ai.djl.ndarray.NDArray hs = scope.randomNormal(new ai.djl.ndarray.types.Shape(1, 1, M));
                        mx.step(scope, st, new molt.teacher.model.AttentionInput(hs, x, x, x, x, x));
                    }
                    if (i % W == 0) {
                        bytes[i / W - 1] = st.bytes();
                    }
                }
            }
            assertEquals(bytes[0], bytes[1], name + ": bytes after w and 2w tokens");
            assertEquals(bytes[1], bytes[2], name + ": bytes after 2w and 3w tokens");
        }
    }
}
