package molt.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import molt.data.probes.RecallProbes;
import molt.teacher.InputException;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TopKAndProbesTest {
    private static final ByteTokenizer TOK = new ByteTokenizer();

    @Test
    void topKCacheReadsBackExactlyWhatWasWritten(@TempDir Path dir) throws Exception {
        Random r = new Random(3);
        int k = 5;
        List<TopKCache.Entry> entries = new ArrayList<>();
        for (int s = 0; s < 7; s++) {
            int len = 10 + s;
            long[] ids = new long[len];
            int[] top = new int[len * k];
            float[] lp = new float[len * k];
            for (int i = 0; i < len; i++) {
                ids[i] = r.nextInt(258);
            }
            for (int i = 0; i < top.length; i++) {
                top[i] = r.nextInt(258);
                lp[i] = (float) -Math.abs(r.nextGaussian() * 3);
            }
            lp[0] = Float.NEGATIVE_INFINITY;
            lp[1] = -0f;
            entries.add(new TopKCache.Entry(ids, top, lp));
        }
        Path f = dir.resolve("topk.parquet");
        TopKCache.write(f, k, entries);
        assertEquals(k, TopKCache.k(f));
        List<TopKCache.Entry> back = TopKCache.read(f);
        assertEquals(entries.size(), back.size());
        for (int i = 0; i < entries.size(); i++) {
            assertArrayEquals(entries.get(i).inputIds(), back.get(i).inputIds());
            assertArrayEquals(entries.get(i).topIds(), back.get(i).topIds());
            assertArrayEquals(entries.get(i).topLogprobs(), back.get(i).topLogprobs());
        }
        Path other = dir.resolve("other.parquet");
        Files.writeString(other, "nope");
        assertThrows(InputException.class, () -> TopKCache.read(other));
    }

    @Test
    void repeatedSpanProbeCopiesTheSpanAtTheDistance() {
        long[] filler = TOK.encode("the committee met on tuesday and agreed on the report. ".repeat(20), false);
        RecallProbes.Probe p = RecallProbes.repeatedSpan(TOK, filler, 12, 100, 42);
        RecallProbes.Probe again = RecallProbes.repeatedSpan(TOK, filler, 12, 100, 42);
        assertArrayEquals(p.tokens(), again.tokens());
        int first = p.scored()[0];
        // Each scored target equals the token `distance` positions earlier (the first copy).
        for (int pos : p.scored()) {
            assertEquals(p.tokens()[pos + 1 - 100], p.tokens()[pos + 1]);
        }
        // 14 tokens " xxxxxxxxxxxx ": at most the second letter on (11 letters and the closing space) are scored,
        // each where its two-token context occurs earlier only in the first copy.
        assertTrue(p.scored().length >= 9 && p.scored().length <= 12, "scored " + p.scored().length);
        for (int pos : p.scored()) {
            int matches = 0;
            for (int q = 1; q < pos; q++) {
                boolean same = p.tokens()[q - 1] == p.tokens()[pos - 1] && p.tokens()[q] == p.tokens()[pos];
                matches += same ? 1 : 0;
                if (same) {
                    assertEquals(pos - 100, q, "the only earlier occurrence of the context is in the first copy");
                }
            }
            assertEquals(1, matches);
        }
        assertTrue(Character.isLetter((char) p.tokens()[first]), "the leading space is never scored");
        int[] perfect = new int[p.tokens().length];
        for (int i = 0; i + 1 < perfect.length; i++) {
            perfect[i] = (int) p.tokens()[i + 1];
        }
        assertEquals(1.0, RecallProbes.accuracy(p, perfect));
        assertEquals(0.0, RecallProbes.accuracy(p, new int[p.tokens().length]), 0.2);
        assertTrue(first > 100);
        // The first letter follows a space; where the filler has words starting with that letter, its context
        // " x" is ambiguous and the second letter is not scored.
        int ambiguousSeen = 0;
        for (long seed = 0; seed < 40; seed++) {
            RecallProbes.Probe q = RecallProbes.repeatedSpan(TOK, filler, 12, 100, seed);
            int second = q.tokens().length - 14;
            char letter = (char) q.tokens()[second + 1];
            String before = TOK.decode(java.util.Arrays.copyOfRange(q.tokens(), 0, second), false);
            boolean ambiguous = before.indexOf(" " + letter) != before.lastIndexOf(" " + letter);
            ambiguousSeen += ambiguous ? 1 : 0;
            assertEquals(!ambiguous, java.util.Arrays.stream(q.scored()).anyMatch(x -> x == second + 1),
                    "seed " + seed + ", first letter " + letter);
        }
        assertTrue(ambiguousSeen > 5 && ambiguousSeen < 35, "both cases checked: " + ambiguousSeen);
    }

    @Test
    void associativeRecallScoresTheValues() {
        long[] filler = TOK.encode("some filler text. ".repeat(10), false);
        RecallProbes.Probe p = RecallProbes.associativeRecall(TOK, filler, 8, 4, 50, 7);
        String text = TOK.decode(p.tokens(), false);
        for (int pos : p.scored()) {
            assertEquals('=', (char) p.tokens()[pos]);
            char value = (char) p.tokens()[pos + 1];
            assertTrue(Character.isDigit(value));
            String key = TOK.decode(java.util.Arrays.copyOfRange(p.tokens(), pos - 3, pos), false);
            assertTrue(text.contains(key + "=" + value + " "), "the queried key's value is in the context");
        }
    }
}
