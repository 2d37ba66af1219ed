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

    /** The teacher's projections: exactly x W^T + b. */
    Projector PLAIN = (layer, target, x, wT, b) -> LlamaBlocks.linear(x, wT, b);
}
