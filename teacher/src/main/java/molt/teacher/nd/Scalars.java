package molt.teacher.nd;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Scalar operands whose memory PyTorch owns, for arithmetic on arrays that autograd records.
 *
 * <p>DJL's {@code NDArray.mul(Number)} (and {@code div}, {@code maximum}, {@code minimum}, ...) wraps the number in a
 * temporary array backed by a Java direct buffer, runs the op, and closes the temporary at once. When the op is
 * recorded for backward, autograd saves that operand (the gradient of {@code x * s} needs {@code s}), but the Java
 * buffer behind it is freed by the next garbage collection: backward then reads freed memory. Measured here: the
 * same step computed twice gave gradient norms of 0.77 and 0.91, and now and then NaN or 1e64, about once in a
 * hundred steps. So every number that meets a recorded array goes through {@link #of}: a 0-dimensional float32 array
 * in PyTorch memory, cached per value (a handful of distinct values per run), which PyTorch also accepts beside
 * arrays on a GPU.
 */
public final class Scalars {
    private static final NDManager MANAGER = NDManager.newBaseManager(Device.cpu());
    private static final Map<Float, NDArray> CACHE = new ConcurrentHashMap<>();

    private Scalars() {
    }

    /** {@code value} as a 0-dimensional float32 array that lives as long as the JVM. */
    public static NDArray of(double value) {
        return CACHE.computeIfAbsent((float) value,
                v -> NativeArrays.floats(MANAGER, new float[] {v}, new Shape()));
    }
}
