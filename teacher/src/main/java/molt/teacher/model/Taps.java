package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import java.util.Set;

/** What a teacher forward records per layer for distillation. */
public final class Taps {
    private Taps() {
    }

    /**
     * Which taps to record. {@code layers} null means every layer. {@code logits} false skips the final norm and
     * LM head (attention transfer needs only the taps); {@code stopAfterLast} stops after the last tapped layer.
     */
    public record Request(Set<Integer> layers, boolean hidden, boolean qkv, boolean attentionOutput,
                          boolean attentionWeights, boolean logits) {

        public static Request none() {
            return new Request(Set.of(), false, false, false, false, true);
        }

        /** Everything attention transfer needs, for every layer, without logits. */
        public static Request attentionTransfer(boolean withWeights) {
            return new Request(null, true, true, true, withWeights, false);
        }

        public boolean wants(int layer) {
            return (hidden || qkv || attentionOutput || attentionWeights) && (layers == null || layers.contains(layer));
        }
    }

    /**
     * One layer's recording; fields not requested are null.
     *
     * @param hidden the residual stream entering the layer [B, T, H]
     * @param q queries after RoPE [B, Hq, T, D]
     * @param k keys after RoPE, before the GQA repeat [B, Hkv, T, D]
     * @param v values [B, Hkv, T, D]
     * @param attentionOutput attention output per head before o_proj [B, T, Hq, D]
     * @param attentionWeights softmax weights [B, Hq, T, T]
     */
    public record Layer(NDArray hidden, NDArray q, NDArray k, NDArray v, NDArray attentionOutput,
                        NDArray attentionWeights) {
    }
}
