package molt.pipeline.config;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Set;
import molt.pipeline.train.LoraFinetuneStage;
import molt.pipeline.train.StageRunner;

/**
 * A {@code lora_finetune} stage (LoLCATs stage 2): LoRA adapters train on {@code ce_weight} x cross-entropy plus
 * {@code kl_weight} x KL to the teacher (at {@code temperature}, online, or over the teacher's top-{@code top_k}
 * from a cache), {@code grad_accum} micro-batches per optimizer step. {@code recompute} ({@code auto}, {@code true}
 * or {@code false}) keeps only each layer's input and recomputes the layer during backward; {@code auto} does so
 * when the frozen weights are 16-bit. {@code train_mixers: true} also trains the mixers' parameters end to end, as
 * Mamba-in-the-Llama does, at {@code mixer_lr} ({@code auto}: each mixer's measured default,
 * {@link MixerLearningRates}; {@code mixerLr} is then null).
 */
public record LoraFinetuneSpec(String name, TrainingSettings training, int gradAccum, double ceWeight,
                               double klWeight, double temperature, String klSource, int topK, String recompute,
                               boolean trainMixers, Double mixerLr)
        implements StudentTrainingSpec {
    public static final String TYPE = "lora_finetune";

    static LoraFinetuneSpec bind(String name, Binder s) {
        TrainingSettings training = TrainingSettings.bind(s, 1e-4, 0.0, "constant");
        int accum = (int) s.integer("grad_accum", 8, 1, 1 << 16);
        double ce = s.number("ce_weight", 1, 0, 1e6, true);
        double kl = s.number("kl_weight", 0, 0, 1e6, true);
        double temp = s.number("temperature", 1, 0, 1e3, false);
        if (ce == 0 && kl == 0) {
            throw s.error("ce_weight", "ce_weight and kl_weight cannot both be 0");
        }
        String klSource = s.choice("kl_source", "online", Set.of("online", "cache"));
        int topK = (int) s.integer("top_k", 16, 1, 1 << 20);
        if (klSource.equals("cache") && temp != 1) {
            throw s.error("temperature",
                    "the top-k cache holds temperature-1 log-probabilities; use 1 with kl_source: cache");
        }
        String recompute = s.choice("recompute", "auto", Set.of("auto", "true", "false"));
        boolean trainMixers = s.bool("train_mixers", false);
        Double mixerLr = null;
        if (s.has("mixer_lr") && !"auto".equals(s.raw().get("mixer_lr").asText())) {
            mixerLr = s.number("mixer_lr", 1e-3, 0, 10, false);
        } else {
            s.str("mixer_lr", "auto");
        }
        if (mixerLr != null && !trainMixers) {
            throw s.error("mixer_lr", "applies only with train_mixers: true");
        }
        return new LoraFinetuneSpec(name, training, accum, ce, kl, temp, klSource, topK, recompute, trainMixers,
                mixerLr);
    }

    @Override
    public void toJson(ObjectNode n) {
        training.toJson(n);
        n.put("grad_accum", gradAccum).put("ce_weight", ceWeight).put("kl_weight", klWeight)
                .put("temperature", temperature).put("kl_source", klSource).put("top_k", topK)
                .put("recompute", recompute).put("train_mixers", trainMixers);
        if (mixerLr == null) {
            n.put("mixer_lr", "auto");
        } else {
            n.put("mixer_lr", mixerLr);
        }
    }

    @Override
    public StageRunner runner() {
        return LoraFinetuneStage::run;
    }
}
