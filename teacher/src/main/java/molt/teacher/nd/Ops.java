package molt.teacher.nd;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

/**
 * A few PyTorch ops called straight through DJL's JNI layer, for per-token code (decoding) where every native call
 * counts. They compute exactly what the matching {@code NDArray} methods compute (the same libtorch op); what they
 * skip is DJL's Java-side checks, which ask libtorch for a fresh array's shape or data type first (one more native
 * call each): {@code matMul} checks that neither operand is a scalar, {@code softmax} passes the data type,
 * {@code split} and {@code concat} check shapes, and an {@code NDIndex} get or set takes five or six calls where one
 * slice or put does. As with the methods, a result belongs to its first operand's manager.
 *
 * <p>PyTorch engine only (every molt model runs on it).
 */
public final class Ops {
    private Ops() {
    }

    private static PtNDArray pt(NDArray a) {
        return (PtNDArray) a;
    }

    /** a.matMul(b). */
    public static NDArray matMul(NDArray a, NDArray b) {
        return JniUtils.matmul(pt(a), pt(b));
    }

    /** a.softmax(axis) for an F32 array. */
    public static NDArray softmax(NDArray a, int axis) {
        return JniUtils.softmax(pt(a), axis, DataType.FLOAT32);
    }

    /** a.concat(b, axis). */
    public static NDArray concat(NDArray a, NDArray b, int axis) {
        return JniUtils.cat(new PtNDArray[] {pt(a), pt(b)}, axis);
    }

    /** a.split(sizes, axis) by section sizes (not split points), as views. */
    public static NDList split(NDArray a, long[] sizes, int axis) {
        return JniUtils.split(pt(a), sizes, axis);
    }

    /** Rows [from, to) of axis {@code axis} of a: a view, attached to {@code scope}. */
    public static NDArray slice(NDManager scope, NDArray a, int axis, long from, long to) {
        NDArray v = slice(a, axis, from, to);
        v.attach(scope);
        return v;
    }

    /**
     * Rows [from, to) of axis {@code axis} of a: a view in a's manager, from one slice op (a DJL index string such as
     * ":, :, 0:960" makes one per axis, and in backward each makes a zero-filled copy of its whole input).
     */
    public static NDArray slice(NDArray a, int axis, long from, long to) {
        return JniUtils.slice(pt(a), axis, from, to, 1);
    }

    /** The last entry of a along {@code axis}, kept as an axis of 1 ({@link #slice}). */
    public static NDArray last(NDArray a, int axis) {
        long n = a.getShape().get(axis);
        return slice(a, axis, n - 1, n);
    }

    /** Row {@code i} of a's first axis: a view, in {@code scope}. */
    public static NDArray row(NDManager scope, NDArray a, long i) {
        return a.get(scope, i); // one native call (DJL's getItem)
    }

    /**
     * Writes {@code value} into rows [from, to) of axis {@code axis} of {@code a}, in place; every other axis is taken
     * whole. {@code a}'s full shape is given ({@code shape}) so that no native call asks for it.
     */
    public static void put(NDArray a, long[] shape, int axis, long from, long to, NDArray value) {
        long[] min = new long[shape.length];
        long[] max = shape.clone();
        long[] step = new long[shape.length];
        java.util.Arrays.fill(step, 1);
        min[axis] = from;
        max[axis] = to;
        JniUtils.indexSet(pt(a), pt(value), min, max, step);
    }
}
