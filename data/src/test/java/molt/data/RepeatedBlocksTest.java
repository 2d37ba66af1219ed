package molt.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RepeatedBlocksTest {

    /** The smallest p such that row[i] == row[i - p] for every i >= p. */
    private static int period(long[] row) {
        for (int p = 1; p < row.length; p++) {
            boolean ok = true;
            for (int i = p; i < row.length && ok; i++) {
                ok = row[i] == row[i - p];
            }
            if (ok) {
                return p;
            }
        }
        return row.length;
    }

    @Test
    void everyRowRepeatsOneBlockOfLettersWithAPeriodInRange() {
        long[] letters = RepeatedBlocks.lowercaseLetters();
        long[][] rows = RepeatedBlocks.batch(new Random(1), letters, 300, 97, 6, 48);
        assertEquals(300, rows.length);
        Set<Integer> periods = new HashSet<>();
        for (long[] row : rows) {
            assertEquals(97, row.length);
            for (long t : row) {
                assertTrue(t >= 'a' && t <= 'z', "token " + t);
            }
            int p = period(row);
            // A random block can be periodic itself (rarely), so its period divides the drawn one; never longer.
            assertTrue(p >= 1 && p <= 48, "period " + p);
            periods.add(p);
        }
        // Periods spread over the whole range, so no fixed positional pattern predicts the repeats.
        assertTrue(periods.contains(6) && periods.contains(48) && periods.size() > 30, periods.toString());
    }

    @Test
    void seededAndValidated() {
        long[] ab = {7, 9};
        assertArrayEquals(RepeatedBlocks.batch(new Random(3), ab, 4, 20, 2, 5)[3],
                RepeatedBlocks.batch(new Random(3), ab, 4, 20, 2, 5)[3]);
        // Periods longer than the row are capped at its length.
        for (long[] row : RepeatedBlocks.batch(new Random(4), RepeatedBlocks.lowercaseLetters(), 20, 10, 30, 40)) {
            assertEquals(10, row.length);
        }
        assertThrows(IllegalArgumentException.class, () -> RepeatedBlocks.batch(new Random(1), new long[] {1}, 1, 8, 2, 4));
        assertThrows(IllegalArgumentException.class, () -> RepeatedBlocks.batch(new Random(1), ab, 1, 8, 5, 4));
    }
}
