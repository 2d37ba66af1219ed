package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import molt.teacher.nd.Scalars;

/**
 * Softmax attention over a sliding window: query t sees the w most recent tokens t-w+1..t, with scores
 * q.k / sqrt(D). Liger's hybrid uses it alone ({@link #softmax}); hedgehog_window shares its normalizer with a
 * linear term ({@link WindowedLinearAttention}). Training and decoding use exactly this window.
 *
 * <p>Chunked form (chunk C >= w): the window of every query in chunk c lies in chunks c-1 and c, so each chunk
 * has one [C, 2C] score block against the previous and current keys, and all chunks' blocks are computed at once
 * ({@link #blocks}: one batched product, whatever the number of chunks). The window mask comes from index
 * comparisons and is added (as {@link Masks#MASKED}) before any row max, softmax or exponential, so nothing
 * overflows. Decoding keeps the last w keys and values in a {@link WindowBuffer}.
 *
 * <p>Shapes: q, k, v [B, H, T, D]; NC = ceil(T / C) chunks, the sequence padded with zeros to NC * C; the blocks'
 * scores [B, H, NC, C, 2C].
 */
public final class SlidingWindow {
    private SlidingWindow() {
    }

    /**
     * Every chunk's score block: the chunk's C queries against the 2C keys of the previous chunk and its own (zeros,
     * masked out, before the first chunk).
     *
     * @param count the number of chunks NC
     * @param values the blocks' values [B, H, NC, 2C, D]
     * @param masked the scaled scores [B, H, NC, C, 2C], {@link Masks#MASKED} outside the window (every row holds its
     *     own query's key, so a softmax or an exponential after the row max is exactly 0 outside the window)
     */
    public record Blocks(int count, NDArray values, NDArray masked) {
    }

    /** The scale 1/sqrt(D) of the window's scores, for q [B, H, T, D]. */
    public static float scale(NDArray q) {
        return (float) (1.0 / Math.sqrt(q.getShape().get(3)));
    }

    /** The number of chunks of {@code chunk} that cover x [B, H, T, ...]. */
    static int chunkCount(NDArray x, int chunk) {
        return Math.toIntExact((x.getShape().get(2) + chunk - 1) / chunk);
    }

    /** All chunks' score blocks for q, k, v [B, H, T, D]. */
    static Blocks blocks(NDManager scope, NDArray q, NDArray k, NDArray v, int chunk, int window, float scale) {
        int count = chunkCount(q, chunk);
        NDArray qc = Masks.toChunks(scope, q.mul(Scalars.of(scale)), count, chunk); // [B, H, NC, C, D], scaled
        NDArray kb = Masks.withPreviousChunk(scope, Masks.toChunks(scope, k, count, chunk)); // [B, H, NC, 2C, D]
        NDArray vb = Masks.withPreviousChunk(scope, Masks.toChunks(scope, v, count, chunk)); // [B, H, NC, 2C, D]
        NDArray[] positions = Masks.blockPositions(scope, count, chunk);
        NDArray win = Masks.window(positions, window); // [NC, C, 2C]
        NDArray scores = qc.matMul(kb.transpose(0, 1, 2, 4, 3)); // [B, H, NC, C, 2C]
        return new Blocks(count, vb, scores.add(Masks.additive(win)));
    }

    /** Window softmax attention with its own normalizer, chunked: q, k, v [B, H, T, D] -> [B, H, T, D]. */
    public static NDArray softmax(NDManager scope, NDArray q, NDArray k, NDArray v, int chunk, int window) {
        Blocks b = blocks(scope, q, k, v, chunk, window, scale(q));
        NDArray probs = b.masked().softmax(-1); // [B, H, NC, C, 2C]
        return Masks.fromChunks(probs.matMul(b.values()), q.getShape().get(2)); // [B, H, T, D]
    }

    /** The recurrent form for one query q [B, H, 1, D] against the buffered window: [B, H, 1, D]. */
    public static NDArray softmaxStep(NDManager scope, NDArray q, WindowBuffer window) {
        NDArray probs = window.scores(scope, q).softmax(-1); // [B, H, 1, n]
        return probs.matMul(window.values(scope));
    }
}
