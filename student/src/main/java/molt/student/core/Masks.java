package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import molt.teacher.nd.Scalars;

/** Masks from index comparisons (DJL has no triu/tril), as 0/1 float arrays [rows, cols], and chunking. */
public final class Masks {
    /**
     * What a masked-out score or log-decay becomes before an exponential or a softmax: exp(-1e30) is exactly 0 in
     * fp32, and adding it (rather than multiplying a mask in after the exponential) keeps exp from ever seeing the
     * large positive exponents that the masked entries would otherwise have.
     */
    public static final float MASKED = -1e30f;

    private Masks() {
    }

    /** The additive form of a 0/1 mask: 0 where {@code mask} is 1, {@link #MASKED} where it is 0. */
    public static NDArray additive(NDArray mask) {
        return mask.sub(1).mul(Scalars.of(-MASKED));
    }

    /**
     * Splits x [B, H, T, ...] along time into chunks of {@code c} (the last may be shorter) with one split op:
     * slicing each chunk separately would make autograd build a full-length zero gradient per slice, turning
     * the backward pass quadratic in T.
     */
    public static NDList chunks(NDArray x, int c) {
        long t = x.getShape().get(2);
        int n = (int) ((t + c - 1) / c);
        long[] cuts = new long[n - 1];
        for (int i = 1; i < n; i++) {
            cuts[i - 1] = (long) i * c;
        }
        return n == 1 ? new NDList(x) : x.split(cuts, 2);
    }

    /** The chunks' results put back together along time (the inverse of {@link #chunks}). */
    public static NDArray unchunk(NDList chunks) {
        return chunks.size() == 1 ? chunks.get(0) : NDArrays.concat(chunks, 2);
    }

    /**
     * Chunk {@code ci} preceded by chunk {@code ci - 1} (chunk 0 alone) along time: the keys or values that a
     * sliding window of at most one chunk can reach from chunk {@code ci}'s queries.
     */
    public static NDArray withPrevious(NDList chunks, int ci) {
        return ci == 0 ? chunks.get(0) : chunks.get(ci - 1).concat(chunks.get(ci), 2);
    }

    /** Query positions [rows, 1] starting at {@code q0}, key positions [1, cols] starting at {@code k0}. */
    private static NDArray[] positions(NDManager m, long q0, long rows, long k0, long cols) {
        NDArray qp = m.arange(q0, q0 + rows, 1, DataType.INT64).reshape(rows, 1); // [rows, 1]
        NDArray kp = m.arange(k0, k0 + cols, 1, DataType.INT64).reshape(1, cols); // [1, cols]
        return new NDArray[] {qp, kp};
    }

    /** 1 where key position <= query position (causal). */
    public static NDArray causal(NDManager m, long q0, long rows, long k0, long cols) {
        NDArray[] p = positions(m, q0, rows, k0, cols);
        return p[1].lte(p[0]).toType(DataType.FLOAT32, false);
    }

    /** 1 where query - window < key <= query: the sliding window of the {@code window} most recent tokens. */
    public static NDArray window(NDManager m, long q0, long rows, long k0, long cols, int window) {
        NDArray[] p = positions(m, q0, rows, k0, cols);
        NDArray inside = p[1].lte(p[0]).logicalAnd(p[1].gt(p[0].sub(window)));
        return inside.toType(DataType.FLOAT32, false);
    }

    /** 1 where key <= query - window: the tokens that have left the window. */
    public static NDArray beforeWindow(NDManager m, long q0, long rows, long k0, long cols, int window) {
        NDArray[] p = positions(m, q0, rows, k0, cols);
        return p[1].lte(p[0].sub(window)).toType(DataType.FLOAT32, false);
    }
}
