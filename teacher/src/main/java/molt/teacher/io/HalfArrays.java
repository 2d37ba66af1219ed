package molt.teacher.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Reads a checkpoint matrix into an F16 array block by block, so that loading a large tensor never holds more than
 * one block of it outside the result: the block's values go from the file into a reused direct buffer, are wrapped
 * as an array without a copy, and are copied into their rows (or, transposed, their columns) of the result.
 */
public final class HalfArrays {
    /** Elements per block (8 MiB of F16). */
    static final int BLOCK = 1 << 22;

    private HalfArrays() {
    }

    /**
     * Tensor {@code name} of {@code w} (1-D or [rows, cols]) as an F16 array in {@code m}, transposed to [cols, rows]
     * when {@code transpose}; every value goes through {@code conversion}.
     */
    public static NDArray read(NDManager m, WeightSource w, String name, boolean transpose, HalfConversion conversion) {
        long[] shape = w.info(name).shape();
        long rows = shape.length == 1 ? 1 : shape[0];
        long cols = shape.length == 1 ? shape[0] : shape[1];
        if (shape.length > 2 || (transpose && shape.length != 2)) {
            throw new IllegalArgumentException(name + ": expected a matrix, found shape " + new Shape(shape));
        }
        Shape outShape = transpose ? new Shape(cols, rows) : new Shape(shape);
        NDArray out = m.zeros(outShape, DataType.FLOAT16);
        try {
            int blockRows = (int) Math.max(1, Math.min(rows, BLOCK / cols));
            short[] values = new short[Math.toIntExact(blockRows * cols)];
            ByteBuffer direct = ByteBuffer.allocateDirect(values.length * 2).order(ByteOrder.nativeOrder());
            for (long r0 = 0; r0 < rows; r0 += blockRows) {
                int n = (int) Math.min(blockRows, rows - r0);
                short[] block = n == blockRows ? values : new short[Math.toIntExact(n * cols)];
                w.readHalf(name, r0 * cols, block, conversion);
                direct.clear();
                direct.asShortBuffer().put(block);
                direct.limit(block.length * 2); // the block's bytes exactly (the last block may be shorter)
                Shape blockShape = shape.length == 1 ? new Shape(cols) : new Shape(n, cols);
                try (NDArray wrapped = m.create(direct, blockShape, DataType.FLOAT16)) {
                    if (shape.length == 1) {
                        out.set(new NDIndex(":"), wrapped);
                    } else if (transpose) {
                        try (NDArray t = wrapped.transpose()) {
                            out.set(new NDIndex(":, {}:{}", r0, r0 + n), t); // columns r0.. of [cols, rows]
                        }
                    } else {
                        out.set(new NDIndex("{}:{}", r0, r0 + n), wrapped); // rows r0.. of [rows, cols]
                    }
                }
            }
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }
}
