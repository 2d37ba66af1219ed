package molt.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SpanCopyTest {

    private static long[] row(int n) {
        long[] r = new long[n];
        for (int i = 0; i < n; i++) {
            r[i] = 1000 + i;
        }
        return r;
    }

    @Test
    void copiesASpanToALaterPointAndChangesNothingElse() {
        Random r = new Random(7);
        Set<Integer> distances = new HashSet<>();
        for (int trial = 0; trial < 500; trial++) {
            long[] before = row(64);
            long[] after = before.clone();
            SpanCopy.Copy c = SpanCopy.apply(after, r, 4, 12);
            assertTrue(c.length() >= 4 && c.length() <= 12, c.toString());
            assertTrue(c.distance() >= c.length() && c.source() + c.distance() + c.length() <= 64, c.toString());
            distances.add(c.distance());
            for (int i = 0; i < 64; i++) {
                int dst = i - c.source() - c.distance();
                long expected = dst >= 0 && dst < c.length() ? before[c.source() + dst] : before[i];
                assertEquals(expected, after[i], "position " + i + " of " + c);
            }
        }
        // Distances cover the whole allowed range, from adjacent copies to copies across the row.
        assertTrue(distances.contains(4) && distances.stream().anyMatch(d -> d >= 56), distances.toString());
    }

    @Test
    void scrambledSpansAreDrawnFromTheRowAndRepeatedExactly() {
        Random r = new Random(3);
        long[] before = row(100);
        long[] after = before.clone();
        SpanCopy.Copy c = SpanCopy.apply(after, r, 30, 30, true);
        long[] first = java.util.Arrays.copyOfRange(after, c.source(), c.source() + 30);
        long[] second = java.util.Arrays.copyOfRange(after, c.source() + c.distance(), c.source() + c.distance() + 30);
        assertArrayEquals(first, second);
        assertTrue(!java.util.Arrays.equals(first, java.util.Arrays.copyOfRange(before, c.source(), c.source() + 30)));
        for (long t : first) {
            assertTrue(t >= 1000 && t < 1100, "token " + t + " comes from the row");
        }
    }

    @Test
    void spansScrambledFromAnAlphabetUseOnlyIt() {
        long[] letters = RepeatedBlocks.lowercaseLetters();
        Random r = new Random(5);
        for (int trial = 0; trial < 50; trial++) {
            long[] after = row(120);
            SpanCopy.Copy c = SpanCopy.apply(after, r, 10, 20, letters);
            for (int i = 0; i < c.length(); i++) {
                long t = after[c.source() + i];
                assertTrue(t >= 'a' && t <= 'z', "token " + t + " is a lowercase letter");
                assertEquals(t, after[c.source() + c.distance() + i]);
            }
        }
    }

    @Test
    void letterWordsAreDelimitedAndCopiedWithTheirSpaces() {
        Random r = new Random(9);
        for (int trial = 0; trial < 50; trial++) {
            long[] after = row(120);
            SpanCopy.Copy c = SpanCopy.apply(after, r, 8, 20, RepeatedBlocks.lowercaseLetters(), ' ');
            int s = c.source();
            int d = s + c.distance();
            assertEquals(' ', after[s]);
            assertEquals(' ', after[s + c.length() - 1]);
            for (int i = 1; i + 1 < c.length(); i++) {
                assertTrue(after[s + i] >= 'a' && after[s + i] <= 'z');
            }
            assertArrayEquals(java.util.Arrays.copyOfRange(after, s, s + c.length()),
                    java.util.Arrays.copyOfRange(after, d, d + c.length()));
        }
    }

    @Test
    void rowsTooShortAreLeftAloneAndBadSpansRefused() {
        long[] tiny = row(7);
        assertNull(SpanCopy.apply(tiny, new Random(1), 4, 8));
        assertArrayEquals(row(7), tiny);
        assertThrows(IllegalArgumentException.class, () -> SpanCopy.apply(row(10), new Random(1), 5, 4));
    }
}
