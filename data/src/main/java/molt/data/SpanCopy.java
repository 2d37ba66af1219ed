package molt.data;

import java.util.Random;

/**
 * Copy augmentation for pretraining a small teacher: a span of a training sequence is written again later in the
 * same sequence, at a distance drawn uniformly from every distance the sequence allows. Natural text repeats
 * itself too rarely for a model trained on a few million tokens to learn to copy (induction heads); sequences that
 * repeat their own text teach it quickly. The copied tokens are the sequence's own real text, so nothing synthetic
 * enters the vocabulary or the statistics of the corpus beyond the repetition itself.
 */
public final class SpanCopy {
    private SpanCopy() {
    }

    /** The copy made: tokens [source, source + length) were written to [source + distance, ...). */
    public record Copy(int source, int length, int distance) {
    }

    /**
     * Copies a span of {@code minSpan..maxSpan} tokens of {@code row} (in place) to a point {@code distance} tokens
     * after its start, with {@code length <= distance <= row.length - length}; returns what was copied, or null when
     * the row is too short for the shortest span to be copied at all.
     */
    public static Copy apply(long[] row, Random r, int minSpan, int maxSpan) {
        return apply(row, r, minSpan, maxSpan, false);
    }

    /**
     * As {@link #apply(long[], Random, int, int)}; with {@code scramble}, the source span is first overwritten with
     * tokens drawn uniformly from the row itself, so that its second copy can be predicted only by copying (natural
     * text is partly predictable without looking back, which weakens the signal that teaches copying).
     */
    public static Copy apply(long[] row, Random r, int minSpan, int maxSpan, boolean scramble) {
        return apply(row, r, minSpan, maxSpan, scramble ? row.clone() : null);
    }

    /**
     * As {@link #apply(long[], Random, int, int)}; with a {@code pool}, the source span is first overwritten with
     * tokens drawn uniformly from it (the row's own tokens, or an alphabet such as the lowercase letters of the
     * recall probes), so that the second copy is predictable only by copying.
     */
    public static Copy apply(long[] row, Random r, int minSpan, int maxSpan, long[] pool) {
        return apply(row, r, minSpan, maxSpan, pool, -1);
    }

    /**
     * As {@link #apply(long[], Random, int, int, long[])}, with the scrambled span's first and last tokens set to
     * {@code delimiter} (a space: the span becomes a made-up word, like a name that recurs in a text), so that the
     * token after the word is copied too.
     */
    public static Copy apply(long[] row, Random r, int minSpan, int maxSpan, long[] pool, long delimiter) {
        if (minSpan < 1 || maxSpan < minSpan) {
            throw new IllegalArgumentException("expected 1 <= minSpan <= maxSpan, found " + minSpan + ", " + maxSpan);
        }
        int n = row.length;
        int longest = Math.min(maxSpan, n / 2);
        if (longest < minSpan) {
            return null;
        }
        int len = minSpan + r.nextInt(longest - minSpan + 1);
        // Distance uniform in [len, n - len]; then the source start uniform among those that fit.
        int distance = len + r.nextInt(n - 2 * len + 1);
        int source = r.nextInt(n - len - distance + 1);
        if (pool != null) {
            for (int i = 0; i < len; i++) {
                row[source + i] = pool[r.nextInt(pool.length)];
            }
            if (delimiter >= 0 && len >= 3) { // a random word: the span starts and ends with the delimiter
                row[source] = delimiter;
                row[source + len - 1] = delimiter;
            }
        }
        System.arraycopy(row, source, row, source + distance, len);
        return new Copy(source, len, distance);
    }
}
