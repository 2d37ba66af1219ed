package molt.pipeline.config;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import molt.student.mixer.MixerRegistry;
import molt.student.mixer.MixerSettings;
import org.junit.jupiter.api.Test;

/** Every registered mixer with parameters has a measured mixer_lr default (docs/BENCHMARKS.md). */
class MixerLearningRatesTest {
    @Test
    void everyMixerThatTrainsHasAMeasuredRate() {
        MixerSettings s = new MixerSettings(4, 8, 16, -2.197);
        for (String name : MixerRegistry.names()) {
            if (MixerRegistry.parameterCount(name, 2, 8, 16, s) > 0) {
                double r = MixerLearningRates.of(name);
                assertTrue(r > 0 && r < 1, name + ": " + r);
            }
        }
        assertThrows(molt.teacher.InputException.class, () -> MixerLearningRates.of("no_such_mixer"));
    }
}
