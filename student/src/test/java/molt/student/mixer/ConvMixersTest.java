package molt.student.mixer;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import java.util.List;
import java.util.Random;
import java.util.Set;
import molt.student.mixer.MixerHarness.Case;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The convolution-fronted mixers (Mamba-2, Gated DeltaNet): chunked vs recurrent vs their double references,
 * gradients, and decoding states that carry the convolution windows.
 */
class ConvMixersTest {
    private static final int B = 2;
    private static final int H = 2;
    private static final int D = 4;
    private static final int M = 6;

    private static Mixer mixer(NDManager m, String name, int chunk) {
        return MixerRegistry.create(name, m, H, D, M, new MixerSettings(4, 4, chunk, -2.197));
    }

    /** Inputs, and the mixer's initial parameters with noise on those that start at a constant. */
    private static Case convCase(Mixer mx, int t, long seed) {
        Set<String> perturbed = mx.name().equals(Mamba2Mixer.NAME) ? Set.of("D", "norm.weight") : Set.of("norm.weight");
        return Case.fromMixer(mx, B, H, t, D, M, seed, perturbed);
    }

    /** The mixer's naive reference: output and final state. */
    private static double[][] reference(String name, Case c) {
        return name.equals(Mamba2Mixer.NAME) ? Mamba2Reference.run(B, H, c.t, D, M, c.q, c.k, c.v, c.hidden, c.params)
                : GatedDeltaNetReference.run(B, H, c.t, D, M, c.q, c.k, c.v, c.hidden, c.params);
    }

    @ParameterizedTest(name = "{0} T={1} C={2}")
    @CsvSource({"mamba2, 1, 16", "mamba2, 63, 16", "mamba2, 100, 32", "mamba2, 257, 64",
        "gated_deltanet, 1, 16", "gated_deltanet, 63, 16", "gated_deltanet, 100, 32", "gated_deltanet, 257, 64"})
    void chunkedRecurrentAndReferenceAgree(String name, int t, int chunk) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer mx = mixer(m, name, chunk);
            Case c = convCase(mx, t, t + 11L * chunk);
            double[][] ref = reference(name, c);
            // matrixStates also checks that both forms' states hold the convolution windows (equal bytes)
            MixerHarness.assertFormsAgree(m, mx, c, ref[0], 1e-4, MixerHarness.matrixStates(ref[1], 1e-4));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba2", "gated_deltanet"})
    void gradientsMatchFiniteDifferencesOfTheReference(String name) {
        List<String> names = name.equals(Mamba2Mixer.NAME)
                ? List.of("A_log", "dt_bias", "conv_x.weight", "conv_c.bias", "z_proj.weight", "dt_proj.weight", "D",
                    "norm.weight", "v")
                : List.of("A_log", "dt_bias", "conv_v.weight", "conv_q.bias", "gate_proj.weight", "beta_proj.weight",
                    "a_proj.weight", "norm.weight", "v");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Mixer mx = mixer(m, name, 16);
            Case c = convCase(mx, 40, 3);
            MixerHarness.assertGradients(m, mx, c, names, n -> 4, new Random(2), x -> reference(name, x)[0], 1e-3);
        }
    }
}
