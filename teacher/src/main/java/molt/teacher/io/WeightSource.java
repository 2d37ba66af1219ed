package molt.teacher.io;

import java.nio.file.Path;
import java.util.Set;

/**
 * Named tensors from a checkpoint, independent of the file format. Model code reads weights only through this
 * interface and never touches bytes. Floating-point tensors are widened to F32 on read (BF16 and F16 cannot be
 * created as NDArrays on this engine without aborting the JVM).
 */
public interface WeightSource extends AutoCloseable {

    /** Where the weights come from (a file or a model directory), for error messages. */
    Path origin();

    /** All tensor names, sorted. */
    Set<String> names();

    /** Metadata of one tensor; throws {@link molt.teacher.InputException} naming the origin when it is absent. */
    TensorInfo info(String name);

    default boolean contains(String name) {
        return names().contains(name);
    }

    /** The tensor's elements in row-major order, widened to F32. */
    float[] readFloats(String name);

    /**
     * Elements {@code offset .. offset + into.length - 1} (row-major) of a floating-point tensor as F16 bits, each
     * converted and counted by {@code conversion}. This default reads the whole tensor as F32 on every call; sources
     * that hold large tensors read only the range.
     */
    default void readHalf(String name, long offset, short[] into, HalfConversion conversion) {
        float[] all = readFloats(name);
        int from = Math.toIntExact(offset);
        for (int i = 0; i < into.length; i++) {
            into[i] = conversion.convert(all[from + i]);
        }
    }

    @Override
    default void close() {
    }
}
