package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import molt.teacher.nd.Ops;
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

    /**
     * exp(x) where the 0/1 {@code mask} is 1 and exactly 0 where it is 0, without exponentiating a masked entry
     * (x times the mask, exponentiated, times the mask again): the same values as exp(x + additive(mask)), but
     * libtorch's exp takes 30x longer over inputs below -104 than over ordinary ones (docs/BENCHMARKS.md), and a
     * masked entry can be far from 0 either way.
     */
    public static NDArray expWhere(NDArray x, NDArray mask) {
        return x.mul(mask).exp().mul(mask);
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
     * x [B, H, T, X] as {@code count} chunks of {@code chunk} along time, zeros after T:
     * [B, H, count, chunk, X] (one pad and one reshape, whatever the number of chunks).
     */
    public static NDArray toChunks(NDManager scope, NDArray x, int count, int chunk) {
        Shape s = x.getShape();
        long padded = (long) count * chunk;
        NDArray full = s.get(2) == padded ? x
                : x.concat(scope.zeros(new Shape(s.get(0), s.get(1), padded - s.get(2), s.get(3))), 2); // [B, H, count * chunk, X]
        return full.reshape(s.get(0), s.get(1), count, chunk, s.get(3)); // [B, H, count, chunk, X]
    }

    /** The inverse of {@link #toChunks}: [B, H, count, chunk, X] -> [B, H, t, X]. */
    public static NDArray fromChunks(NDArray x, long t) {
        Shape s = x.getShape();
        NDArray full = x.reshape(s.get(0), s.get(1), s.get(2) * s.get(3), s.get(4)); // [B, H, count * chunk, X]
        return full.getShape().get(2) == t ? full : Ops.slice(full, 2, 0, t);
    }

    /**
     * x [B, H, T, X] moved {@code shift} tokens later: position s holds x_{s - shift}, zeros before {@code shift}
     * (all zeros when T <= shift).
     */
    public static NDArray later(NDManager scope, NDArray x, int shift) {
        Shape s = x.getShape();
        long t = s.get(2);
        NDArray zeros = scope.zeros(new Shape(s.get(0), s.get(1), Math.min(shift, t), s.get(3))); // [B, H, min(shift, T), X]
        return shift >= t ? zeros : zeros.concat(Ops.slice(scope, x, 2, 0, t - shift), 2); // [B, H, T, X]
    }

    /**
     * The sum of every chunk before each chunk: x [B, H, NC, R, X] -> [B, H, NC, R, X] with entry c the sum of entries
     * 0..c-1 (zeros for the first), as one product with a strictly lower-triangular [NC, NC] matrix of ones: forward and
     * backward over SmolLM2-sized states ([1, 9, 16, 128, 64]) took 1.4 ms, against 7.2 for libtorch's cumulative sum
     * along this axis (shifted by a concatenation).
     */
    public static NDArray before(NDManager scope, NDArray x) {
        Shape s = x.getShape();
        long n = s.get(2);
        NDArray strict = causal(scope, 0, n, 1, n); // [NC, NC]: 1 where chunk j < chunk i
        NDArray flat = x.reshape(s.get(0), s.get(1), n, s.get(3) * s.get(4)); // [B, H, NC, R * X]
        return strict.matMul(flat).reshape(s); // [B, H, NC, R, X]
    }

    /**
     * Each chunk preceded by the chunk before it (zeros before the first): [B, H, count, chunk, X] ->
     * [B, H, count, 2 * chunk, X], the keys or values a window of at most one chunk can reach from each chunk.
     */
    public static NDArray withPreviousChunk(NDManager scope, NDArray xc) {
        Shape s = xc.getShape();
        NDArray first = scope.zeros(new Shape(s.get(0), s.get(1), 1, s.get(3), s.get(4))); // [B, H, 1, chunk, X]
        NDArray previous = s.get(2) == 1 ? first : first.concat(Ops.slice(scope, xc, 2, 0, s.get(2) - 1), 2); // [B, H, count, chunk, X]
        return previous.concat(xc, 3); // [B, H, count, 2 * chunk, X]
    }

    /**
     * The positions in {@link #withPreviousChunk}'s blocks: queries [count, chunk, 1] at c * chunk + i and keys
     * [count, 1, 2 * chunk] at (c - 1) * chunk + j (negative for the zeros before the first chunk).
     */
    public static NDArray[] blockPositions(NDManager m, int count, int chunk) {
        NDArray qp = m.arange(0, (long) count * chunk, 1, DataType.INT64).reshape(count, chunk, 1); // [count, chunk, 1]
        NDArray start = m.arange(-chunk, (long) (count - 2) * chunk + 1, chunk, DataType.INT64)
                .reshape(count, 1, 1); // [count, 1, 1]: (c - 1) * chunk
        NDArray kp = start.add(m.arange(0, 2L * chunk, 1, DataType.INT64).reshape(1, 1, 2L * chunk)); // [count, 1, 2 * chunk]
        return new NDArray[] {qp, kp};
    }

    /** 1 where query - window < key <= query and the key exists (position >= 0), for {@link #blockPositions}. */
    public static NDArray window(NDArray[] p, int window) {
        NDArray inside = p[1].lte(p[0]).logicalAnd(p[1].gt(p[0].sub(window))).logicalAnd(p[1].gte(0));
        return inside.toType(DataType.FLOAT32, false);
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
}
