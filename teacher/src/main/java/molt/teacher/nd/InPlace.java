package molt.teacher.nd;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.pytorch.jni.JniUtils;

/** Writes values into long-lived arrays (parameters) without replacing their storage. */
public final class InPlace {
    private InPlace() {
    }

    /**
     * Copies {@code values} into {@code target} with an in-place indexed copy. DJL's {@code NDArray.set(float[])}
     * instead swaps the tensor's storage for a Java direct buffer owned by the wrapper, which is unsafe for tensors
     * that autograd or other wrappers also hold. Autograd does not record the copy: PyTorch's grad mode is per thread
     * and on in a fresh thread (a distributed task's), where copying into a trainable leaf would fail.
     */
    public static void copy(NDArray target, float[] values) {
        if (values.length != target.size()) {
            throw new IllegalArgumentException("expected " + target.size() + " values for " + target.getShape()
                    + ", found " + values.length);
        }
        boolean gradMode = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try (NDManager scope = target.getManager().newSubManager()) {
            NDArray src = scope.create(values, target.getShape());
            target.set(new NDIndex("..."), src);
        } finally {
            JniUtils.setGradMode(gradMode);
        }
    }
}
