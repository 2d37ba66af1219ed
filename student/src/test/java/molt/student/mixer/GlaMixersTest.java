package molt.student.mixer;

import static molt.student.core.Numerics.assertClose;
import static molt.student.core.Numerics.gauss;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import molt.student.mixer.MixerHarness.Case;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * GLA (learned gate), Liger's GLA and Liger's window mix: chunked vs recurrent vs the double reference; gradients;
 * decays strong enough to overflow a factored chunked form.
 */
class GlaMixersTest {
    private static final int B = 2;
    private static final int H = 2;
    private static final int D = 8;
    private static final List<String> PARAMS = List.of("gate_down.weight", "gate_up.weight", "gate_up.bias",
            "output_norm.weight");

    /** q, k, v, the learned gate's parameters and the loss weights (drawn for every form, so cases stay alike). */
    private static Case glaCase(int t, long seed, double qk) {
        Random r = new Random(seed);
        Case c = new Case(B, H, t, D).qkv(r, qk);
        c.params.put(PARAMS.get(0), gauss(r, H * D * GlaMixer.RANK, 0.3));
        c.params.put(PARAMS.get(1), gauss(r, H * GlaMixer.RANK * D, 0.3));
        c.params.put(PARAMS.get(2), gauss(r, H * D, 1));
        c.params.put(PARAMS.get(3), gauss(r, H * D, 1));
        return c.loss(r);
    }

    /** Output and final state of GLA ({@code liger} false) or Liger's GLA. */
    private static double[][] reference(boolean liger, Case c) {
        return GlaReference.run(liger, B, H, c.t, D, c.q, c.k, c.v, c.params.get(PARAMS.get(0)),
                c.params.get(PARAMS.get(1)), c.params.get(PARAMS.get(2)), c.params.get(PARAMS.get(3)));
    }

    private static Mixer mixer(NDManager m, String name, int window, int chunk) {
        return MixerRegistry.create(name, m, H, D, H * D, new MixerSettings(4, window, chunk, -2.197));
    }

    @ParameterizedTest(name = "{0} T={1} C={2}")
    @CsvSource({"gla, 1, 16", "gla, 63, 16", "gla, 100, 32", "gla, 257, 64", "gla_liger, 63, 16",
        "gla_liger, 257, 32"})
    void chunkedRecurrentAndReferenceAgree(String name, int t, int chunk) {
        Case c = glaCase(t, t * 3L + chunk, 1.0);
        double[][] ref = reference(name.equals(LigerMixer.NAME), c);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            MixerHarness.assertFormsAgree(m, c.load(mixer(m, name, 4, chunk)), c, ref[0], 1e-4,
                    MixerHarness.matrixStates(ref[1], 1e-4));
        }
    }

    @Test
    void gradientsMatchFiniteDifferencesOfTheReference() {
        Case c = glaCase(70, 5, 1.0);
        List<String> names = new ArrayList<>(List.of("q", "k", "v"));
        names.addAll(PARAMS);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            MixerHarness.assertGradients(m, c.load(mixer(m, GlaMixer.NAME, 4, 32)), c, names, n -> 6, new Random(1),
                    x -> reference(false, x)[0], 1e-3);
        }
    }

    @Test
    void strongDecaysOverLongChunksStayFinite() {
        Case c = glaCase(128, 9, 30.0); // logsigmoid(-30)/16 per step: exp(-G) would overflow in fp32 over a chunk
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer mx = mixer(m, LigerMixer.NAME, 4, 64);
            float[] y = mx.forward(m, c.input(m), false).out().toFloatArray();
            for (float x : y) {
                assertFalse(Float.isNaN(x) || Float.isInfinite(x));
            }
            assertClose(y, reference(true, c)[0], 1e-4, "liger");
            assertTrue(mx.parameters().isEmpty(), "Liger's GLA has no new parameters");
        }
    }

    @ParameterizedTest(name = "T={0} C={1}")
    @CsvSource({"1, 16", "63, 16", "100, 32", "257, 64"})
    void ligerWindowMixMatchesItsReference(int t, int chunk) {
        Case c = glaCase(t, t + 5L * chunk, 1.0);
        double[] want = GlaReference.ligerWindow(B, H, t, D, c.q, c.k, c.v, 16);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            MixerHarness.assertFormsAgree(m, mixer(m, LigerWindowMixer.NAME, 16, chunk), c, want, 1e-4,
                (chunked, recurrent) -> assertEquals(chunked.bytes(), recurrent.bytes()));
        }
    }
}
