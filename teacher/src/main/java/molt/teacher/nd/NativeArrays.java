package molt.teacher.nd;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/**
 * Arrays made from Java values whose memory PyTorch owns. On the CPU, DJL's {@code NDManager.create(float[])} makes
 * the tensor's storage a Java direct buffer that only the Java wrapper keeps alive; a view, or a tensor autograd saved
 * for backward, that outlives the wrapper then reads memory the garbage collector has freed (see {@link Scalars} for
 * the case measured here). Copying into PyTorch memory at creation removes that hazard for parameters and per-step
 * inputs alike, at the cost of one copy.
 */
public final class NativeArrays {
    private NativeArrays() {
    }

    public static NDArray floats(NDManager m, float[] values, Shape shape) {
        try (NDArray java = m.create(values, shape)) {
            NDArray owned = java.duplicate();
            owned.attach(m);
            return owned;
        }
    }

    /**
     * An array's values. DJL's {@code toFloatArray} makes a copy of a tensor that is not a contiguous float32 CPU
     * tensor (a transposed weight, a gradient) and attaches it to the array's manager, where it stays: saving a
     * model's weights leaked one such copy per transposed weight on every call. The copy goes to a scratch manager
     * here and is freed on return.
     */
    public static float[] values(NDArray a) {
        try (NDManager scratch = NDManager.newBaseManager(a.getDevice())) {
            a.tempAttach(scratch);
            NDArray f = a.getDataType() == ai.djl.ndarray.types.DataType.FLOAT32 ? a
                    : a.toType(ai.djl.ndarray.types.DataType.FLOAT32, false); // 16-bit frozen weights: exact widening
            return f.toFloatArray();
        }
    }

    public static NDArray longs(NDManager m, long[] values, Shape shape) {
        try (NDArray java = m.create(values, shape)) {
            NDArray owned = java.duplicate();
            owned.attach(m);
            return owned;
        }
    }
}
