package molt.pipeline.config;

import com.fasterxml.jackson.databind.node.ObjectNode;
import molt.pipeline.train.AttentionTransferStage;
import molt.pipeline.train.StageRunner;

/**
 * An {@code attention_transfer} stage (LoLCATs stage 1): the mixers learn to match the teacher's attention output,
 * with loss {@code mse_weight} x MSE ({@code attention_ce_weight} must stay 0: the chunked mixers never form the
 * attention matrix it needs). {@code layer_groups: 0} (the default) trains every mixer layer together, with one
 * schedule, one clipping norm and one validation loss; {@code layer_groups: N} (1 or more) splits the mixer layers
 * into N consecutive groups trained one after another, each layer with its own schedule, clipping, validation and
 * best weights, so that the result does not depend on N.
 */
public record AttentionTransferSpec(String name, TrainingSettings training, double mseWeight,
                                    double attentionCeWeight, int layerGroups) implements StudentTrainingSpec {
    public static final String TYPE = "attention_transfer";

    static AttentionTransferSpec bind(String name, Binder s) {
        TrainingSettings training = TrainingSettings.bind(s, 1e-2, 0.0, "plateau");
        double mse = s.number("mse_weight", 1000, 0, 1e12, true);
        double attCe = s.number("attention_ce_weight", 0, 0, 1e12, true);
        if (attCe > 0) {
            // The chunked mixers never form the T x T attention matrix this loss needs.
            throw s.error("attention_ce_weight", "cross-entropy on attention weights is not supported yet; use 0");
        }
        int groups = (int) s.integer("layer_groups", 0, 0, 1 << 16);
        return new AttentionTransferSpec(name, training, mse, attCe, groups);
    }

    @Override
    public void toJson(ObjectNode n) {
        training.toJson(n);
        n.put("mse_weight", mseWeight).put("attention_ce_weight", attentionCeWeight).put("layer_groups", layerGroups);
    }

    @Override
    public StageRunner runner() {
        return AttentionTransferStage::runOrSkip;
    }
}
