package molt.pipeline.config;

import java.util.Map;

/**
 * Each mixer's learning rate when {@code lora_finetune} trains mixers ({@code train_mixers: true}, {@code mixer_lr:
 * auto}). Measured, not guessed: docs/BENCHMARKS.md, "Mixer learning rates", gives the sweep (the quickstart's
 * teacher, data and seeds; attention transfer, then LoRA with the mixers at each rate) and the command.
 */
public final class MixerLearningRates {
    /**
     * The rate, of 1e-3 and 1e-2, that gave the lower held-out perplexity (ties: the higher recall@64) after attention
     * transfer and 60k tokens of LoRA at lr 5e-4 with the mixers trained too.
     */
    private static final Map<String, Double> MEASURED = Map.of(
            "hedgehog_window", 1e-2,
            "mamba2", 1e-3,
            "mamba2_window", 1e-2,
            "gated_deltanet", 1e-3,
            "gated_deltanet_window", 1e-2,
            "gla", 1e-2,
            "retention", 1e-2,
            "hedgehog", 1e-2);

    private MixerLearningRates() {
    }

    /** The measured rate of {@code mixer} (mixers without parameters never ask). */
    public static double of(String mixer) {
        Double r = MEASURED.get(mixer);
        if (r == null) { // a mixer registered after the sweep
            throw new molt.teacher.InputException("mixer_lr: auto has no measured rate for mixer '" + mixer
                    + "'; set mixer_lr");
        }
        return r;
    }
}
