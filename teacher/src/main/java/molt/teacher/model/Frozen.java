package molt.teacher.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;

/**
 * How a computation uses a frozen weight that is held in 16 bits ({@link molt.teacher.Precision#F16}). F32 weights
 * are used as they are, whatever the mode.
 *
 * <ul>
 *   <li>{@link #WIDEN} (CPU): the weight is widened to an F32 copy created in the caller's scope, so it lives only
 *       as long as the layer (or training step) that uses it. F16 products run at under 1 GFLOP/s on CPU.</li>
 *   <li>{@link #HALF} (GPU): the weight stays F16 and {@link LlamaBlocks#linear} multiplies in F16, returning F32.
 *       </li>
 * </ul>
 */
public enum Frozen {
    WIDEN, HALF;

    /** The mode for a device: F16 products where they are fast (GPU), widening elsewhere. */
    public static Frozen forDevice(Device device) {
        return device.isGpu() ? HALF : WIDEN;
    }

    /**
     * {@code stored} ready for use in {@code scope}: itself when F32 (or null); otherwise a view (HALF) or an F32
     * copy (WIDEN) that belongs to {@code scope}, never to the weights' capped manager.
     */
    public NDArray use(NDManager scope, NDArray stored) {
        if (stored == null || stored.getDataType() == DataType.FLOAT32) {
            return stored;
        }
        NDArray view = stored.get(scope, new NDIndex()); // same storage, owned by scope
        return this == HALF ? view : view.toType(DataType.FLOAT32, false);
    }
}
