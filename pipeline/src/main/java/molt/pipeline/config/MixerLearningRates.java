package molt.pipeline.config;

import java.util.Map;

/**
 * Each mixer's learning rate when {@code lora_finetune} trains mixers ({@code train_mixers: true}, {@code mixer_lr:
 * auto}). Measured, not guessed: docs/BENCHMARKS.md, "Mixer learning rates", gives the sweep (the quickstart's
 * teacher, data and seeds; attention transfer, then LoRA with the mixers at each rate) and the command.
 */
public final class MixerLearningRates {
    private static final Map<String, Double> MEASURED = Map.of();

    private MixerLearningRates() {
    }

    /** The measured rate of {@code mixer}. */
    public static double of(String mixer) {
        Double r = MEASURED.get(mixer);
        if (r == null) {
            throw new molt.teacher.InputException("mixer_lr: auto has no measured rate for mixer '" + mixer
                    + "'; set mixer_lr");
        }
        return r;
    }
}
