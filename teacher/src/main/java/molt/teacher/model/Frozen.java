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
 *   <li>{@link #WIDEN} (CPU without AMX): the weight is widened to an F32 copy created in the caller's scope, so it
 *       lives only as long as the layer (or training step) that uses it; products in F32.</li>
 *   <li>{@link #HALF}: the weight stays 16-bit and {@link LlamaBlocks#linear} multiplies in 16 bits, returning F32:
 *       in F16 on GPU, in BF16 on CPU ({@link molt.teacher.nd.Bf16Products}, on AMX tiles 1.6-2.2x the F32 rate).
 *       </li>
 * </ul>
 */
public enum Frozen {
    WIDEN, HALF;

    /** The mode for a device: 16-bit products where they are fast (GPU, CPU with AMX), widening elsewhere. */
    public static Frozen forDevice(Device device) {
        return forDevice(device.isGpu());
    }

    private static Frozen forDevice(boolean gpu) {
        return gpu || molt.teacher.nd.Bf16Products.fast() ? HALF : WIDEN;
    }

    /**
     * How frozen weights held at {@code precision} multiply in this mode on a GPU or a CPU: {@code f32}, {@code f16}
     * (GPU), {@code bf16} (CPU with AMX) or {@code f32-widened} (16-bit weights widened).
     */
    public String products(molt.teacher.Precision precision, boolean gpu) {
        if (precision == molt.teacher.Precision.F32) {
            return "f32";
        }
        return this == WIDEN ? "f32-widened" : gpu ? "f16" : "bf16";
    }

    /** {@link #products(molt.teacher.Precision, boolean)} in the mode {@link #forDevice} takes, for run headers. */
    public static String productsOn(molt.teacher.Precision precision, boolean gpu) {
        return forDevice(gpu).products(precision, gpu);
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
