package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import molt.teacher.nd.Scalars;

/**
 * Softmax attention over a sliding window: query t sees the w most recent tokens t-w+1..t, with scores
 * q.k / sqrt(D). Liger's hybrid uses it alone ({@link #softmax}); hedgehog_window shares its normalizer with a
 * linear term ({@link WindowedLinearAttention}). Training and decoding use exactly this window.
 *
 * <p>Chunked form (chunk C >= w): the window of every query in chunk c lies in chunks c-1 and c, so each chunk
 * builds one [C, 2C] score block against the previous and current keys ({@link #block}). The window mask comes from
 * index comparisons and is added (as {@link Masks#MASKED}) before any row max, softmax or exponential, so nothing
 * overflows. Decoding keeps the last w keys and values in a {@link WindowBuffer}.
 *
 * <p>Shapes: q, k, v [B, H, T, D]; a block's scores [B, H, n, m] for the chunk's n queries and m block keys.
 */
public final class SlidingWindow {
    private SlidingWindow() {
    }

    /**
     * One chunk's score block: queries at c0..c0+n-1 against the block's m keys at p0..p0+m-1 (the previous chunk, if
     * any, then this one).
     *
     * @param values the block's values [B, H, m, D]
     * @param inside the window mask [n, m]: 1 where the key is in the query's window
     * @param masked the scaled scores [B, H, n, m], {@link Masks#MASKED} outside the window
     */
    public record Block(long c0, long p0, long n, long m, NDArray values, NDArray inside, NDArray masked) {
    }

    /** The scale 1/sqrt(D) of the window's scores, for q [B, H, T, D]. */
    public static float scale(NDArray q) {
        return (float) (1.0 / Math.sqrt(q.getShape().get(3)));
    }

    /** Chunk {@code ci}'s block, from q, k, v split into chunks of {@code chunk}. */
    static Block block(NDManager scope, NDList qs, NDList ks, NDList vs, int ci, int chunk, int window, float scale) {
        long c0 = (long) ci * chunk;
        long p0 = Math.max(0, c0 - chunk);
        NDArray qc = qs.get(ci); // [B, H, n, D]
        NDArray kb = Masks.withPrevious(ks, ci); // [B, H, m, D]
        NDArray vb = Masks.withPrevious(vs, ci); // [B, H, m, D]
        long n = qc.getShape().get(2);
        long m = kb.getShape().get(2);
        NDArray win = Masks.window(scope, c0, n, p0, m, window); // [n, m]
        NDArray scores = qc.matMul(kb.transpose(0, 1, 3, 2)).mul(Scalars.of(scale)); // [B, H, n, m]
        return new Block(c0, p0, n, m, vb, win, scores.add(Masks.additive(win)));
    }

    /** Window softmax attention with its own normalizer, chunked: q, k, v [B, H, T, D] -> [B, H, T, D]. */
    public static NDArray softmax(NDManager scope, NDArray q, NDArray k, NDArray v, int chunk, int window) {
        float scale = scale(q);
        NDList qs = Masks.chunks(q, chunk);
        NDList ks = Masks.chunks(k, chunk);
        NDList vs = Masks.chunks(v, chunk);
        NDList outs = new NDList();
        for (int ci = 0; ci < qs.size(); ci++) {
            Block b = block(scope, qs, ks, vs, ci, chunk, window, scale);
            NDArray probs = b.masked().softmax(-1).mul(b.inside()); // [B, H, n, m]
            outs.add(probs.matMul(b.values())); // [B, H, n, D]
        }
        return Masks.unchunk(outs);
    }

    /** The recurrent form for one query q [B, H, 1, D] against the buffered window: [B, H, 1, D]. */
    public static NDArray softmaxStep(NDManager scope, NDArray q, WindowBuffer window) {
        NDArray probs = window.scores(scope, q).softmax(-1); // [B, H, 1, n]
        return probs.matMul(window.values(scope));
    }
}
