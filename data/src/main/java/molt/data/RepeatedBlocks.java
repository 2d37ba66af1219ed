package molt.data;

import java.util.Random;

/**
 * Sequences made of one random block of tokens repeated to the end: the classic task on which Transformers form
 * induction heads (Olsson et al. 2022). Every token after the first block is predictable only by looking back one
 * period and copying, and the period varies from sequence to sequence, so no fixed positional pattern solves it:
 * the model has to find where the current context occurred before and copy what followed. A small teacher trained
 * only on a few million tokens of prose never gets there (copying pays too rarely in text); a few thousand steps of
 * these sequences, short ones first, teach it, and the corpus steps that follow keep it (see
 * {@code TeacherPretrainStage}).
 */
public final class RepeatedBlocks {
    private RepeatedBlocks() {
    }

    /**
     * {@code rows} sequences of {@code length} tokens; each repeats a block of {@code minPeriod..maxPeriod} tokens
     * (uniform, capped at {@code length}) drawn uniformly from {@code alphabet}, so token {@code i} equals token
     * {@code i - period} from the second block on.
     */
    public static long[][] batch(Random r, long[] alphabet, int rows, int length, int minPeriod, int maxPeriod) {
        if (alphabet.length < 2) {
            throw new IllegalArgumentException("expected an alphabet of at least 2 tokens, found " + alphabet.length);
        }
        if (rows < 1 || length < 2 || minPeriod < 1 || maxPeriod < minPeriod) {
            throw new IllegalArgumentException("expected rows >= 1, length >= 2 and 1 <= minPeriod <= maxPeriod, found "
                    + rows + ", " + length + ", " + minPeriod + ", " + maxPeriod);
        }
        long[][] out = new long[rows][length];
        int longest = Math.min(maxPeriod, length);
        int shortest = Math.min(minPeriod, longest);
        for (long[] row : out) {
            int period = shortest + r.nextInt(longest - shortest + 1);
            for (int i = 0; i < length; i++) {
                row[i] = i < period ? alphabet[r.nextInt(alphabet.length)] : row[i - period];
            }
        }
        return out;
    }

    /** The byte tokens of the lowercase letters a-z, the alphabet of molt's recall probes. */
    public static long[] lowercaseLetters() {
        long[] a = new long[26];
        for (int i = 0; i < 26; i++) {
            a[i] = 'a' + i;
        }
        return a;
    }
}
