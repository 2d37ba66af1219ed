package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/**
 * Arrays made from Java values whose memory PyTorch owns. On the CPU, DJL's {@code NDManager.create(float[])} wraps a
 * Java direct buffer as the tensor's storage (kept alive only by the Java wrapper). Autograd keeps its own
 * references to the tensors it saves for backward, but not to that buffer; per-step inputs of a trained graph (RoPE
 * tables, token ids, targets, masks) are therefore copied into PyTorch memory here, and the Java buffer released at
 * once. Sporadic NaN gradients in the q/k path of pretraining runs (never at the same step twice, never with a
 * garbage collector that frees nothing) stopped with this.
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

    public static NDArray longs(NDManager m, long[] values, Shape shape) {
        try (NDArray java = m.create(values, shape)) {
            NDArray owned = java.duplicate();
            owned.attach(m);
            return owned;
        }
    }
}
