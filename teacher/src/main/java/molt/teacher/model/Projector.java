package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import molt.teacher.Projection;

/**
 * How a layer's linear projections are applied: plainly for the frozen teacher, or with a low-rank update for a
 * student with LoRA.
 */
@FunctionalInterface
public interface Projector {

    /** y = x W^T + b (+ whatever the projector adds) for layer {@code layer}'s projection {@code target}. */
    NDArray project(int layer, Projection target, NDArray x, NDArray wT, NDArray b);

    /**
     * The weight W^T [in, out] this projector applies for layer {@code layer}'s projection {@code target}, given the
     * stored W^T's values (for decoding in plain Java, {@link CpuDecoding}). The plain projector applies W^T itself;
     * one that adds a low-rank update returns W^T with the update merged.
     */
    default float[] effectiveWeightT(int layer, Projection target, float[] wT) {
        return wT;
    }

    /** The teacher's projections: exactly x W^T + b. */
    Projector PLAIN = (layer, target, x, wT, b) -> LlamaBlocks.linear(x, wT, b);
}
