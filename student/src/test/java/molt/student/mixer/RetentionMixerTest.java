package molt.student.mixer;

import static molt.student.core.Numerics.gauss;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import java.util.List;
import java.util.Random;
import molt.student.mixer.MixerHarness.Case;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Retention: chunked vs recurrent vs the double reference on outputs, final state and gradients. */
class RetentionMixerTest {
    private static final int B = 2;
    private static final int H = 3;
    private static final int D = 8;
    private static final String GAIN = "output_norm.weight";

    /** q, k, v and the norm's gain from {@code r}. */
    private static Case retentionCase(int t, Random r) {
        Case c = new Case(B, H, t, D).qkv(r, 1);
        c.params.put(GAIN, gauss(r, H * D, 1));
        return c;
    }

    private static double[][] reference(Case c) {
        return RetentionReference.run(B, H, c.t, D, c.q, c.k, c.v, c.params.get(GAIN));
    }

    private static RetentionMixer mixer(NDManager m, int chunk) {
        return new RetentionMixer(m, H, D, new MixerSettings(4, 4, chunk, -2.197));
    }

    @ParameterizedTest(name = "T={0} C={1}")
    @CsvSource({"1, 16", "63, 16", "100, 32", "257, 64", "257, 16"})
    void chunkedRecurrentAndReferenceAgree(int t, int chunk) {
        Case c = retentionCase(t, new Random(t * 7L + chunk));
        double[][] ref = reference(c);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            MixerHarness.assertFormsAgree(m, c.load(mixer(m, chunk)), c, ref[0], 1e-4,
                MixerHarness.matrixStates(ref[1], 1e-4)
                    .andThen((chunked, recurrent) -> assertEquals((long) B * H * D * D * 4, recurrent.bytes())));
        }
    }

    @ParameterizedTest(name = "T={0} C={1}")
    @CsvSource({"63, 16", "100, 32"})
    void gradientsMatchFiniteDifferencesOfTheReference(int t, int chunk) {
        Random r = new Random(t);
        Case c = retentionCase(t, r).loss(r);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            MixerHarness.assertGradients(m, c.load(mixer(m, chunk)), c, List.of("q", "k", "v", GAIN), n -> 8, r,
                    x -> reference(x)[0], 1e-3);
        }
    }

    @Test
    void decodingStateStaysFlat() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            RetentionMixer mx = new RetentionMixer(m, H, D, MixerSettings.lolcats());
            MixerHarness.assertDecodingFromEmptyFlat(m, mx, 600, 11, 0, MixerHarness.tokens(H, D, 1, 1));
        }
    }
}
