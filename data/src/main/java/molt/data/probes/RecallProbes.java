package molt.data.probes;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import molt.teacher.tokenizer.TextTokenizer;

/**
 * In-context recall probes, deterministic from a seed. Each probe is a token sequence and the positions whose
 * next token is scored (accuracy = fraction of scored positions where the model's argmax is the true next token).
 *
 * <ul>
 *   <li>{@link #repeatedSpan}: a span of random lowercase letters, filler text, then the same span again; the
 *   second copy's tokens are scored where the two tokens before them identify the first copy. Copying a span seen
 *   {@code distance} tokens earlier is what induction heads do, so a softmax teacher trained on ordinary text
 *   solves it; a fixed-state mixer must remember the span across the gap, which is where linear attention
 *   loses.</li>
 *   <li>{@link #associativeRecall}: "k1=v1 k2=v2 ... " pairs of random letter keys and digit values, filler, then
 *   queries "kq=" for some keys; the value digit after each query's "=" is scored. This needs the format in the
 *   training data to be solvable, so molt's quickstart teacher (trained on prose) is only measured on the
 *   repeated span; associative recall is provided for teachers trained with such data.</li>
 * </ul>
 * Filler comes from the caller (real text, e.g. the held-out corpus), so the probe sits in natural context.
 */
public final class RecallProbes {

    /** A probe: tokens and the positions p whose next token tokens[p + 1] is scored. */
    public record Probe(long[] tokens, int[] scored) {
    }

    private RecallProbes() {
    }

    private static String letters(Random r, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            sb.append((char) ('a' + r.nextInt(26)));
        }
        return sb.toString();
    }

    /** Filler of exactly {@code n} tokens taken from {@code filler}'s tokens (repeated if too short). */
    private static long[] fill(long[] filler, int n, Random r) {
        long[] out = new long[Math.max(0, n)];
        int start = filler.length > n ? r.nextInt(filler.length - n) : 0;
        for (int i = 0; i < out.length; i++) {
            out[i] = filler[(start + i) % filler.length];
        }
        return out;
    }

    /**
     * A random span of {@code spanChars} letters, then filler so that the second copy starts {@code distance} tokens
     * after the first, then the span again.
     */
    public static Probe repeatedSpan(TextTokenizer tok, long[] filler, int spanChars, int distance, long seed) {
        Random r = new Random(seed);
        long[] span = tok.encode(" " + letters(r, spanChars) + " ", false);
        int gap = distance - span.length;
        if (gap < 0) {
            throw new IllegalArgumentException("distance " + distance + " is shorter than the span (" + span.length
                    + " tokens)");
        }
        long[] mid = fill(filler, gap, r);
        long[] lead = fill(filler, 8, r);
        List<Long> t = new ArrayList<>();
        for (long x : lead) {
            t.add(x);
        }
        for (long x : span) {
            t.add(x);
        }
        for (long x : mid) {
            t.add(x);
        }
        int second = t.size();
        for (long x : span) {
            t.add(x);
        }
        // Score predicting a token of the second copy where copying decides it: the two tokens before it occur
        // together nowhere earlier but at the same place in the first copy. The leading space never qualifies (it
        // follows filler), nor, mostly, the first letter: " t" begins many words of the filler, so nothing tells the
        // copy from them; from the second or third letter on, the context is the first copy's alone.
        long[] tokens = t.stream().mapToLong(Long::longValue).toArray();
        int first = lead.length;
        List<Integer> scored = new ArrayList<>();
        for (int i = 1; i + 1 < span.length; i++) {
            int p = second + i;
            boolean unique = true;
            for (int q = 1; q < p && unique; q++) {
                unique = q == first + i || tokens[q - 1] != tokens[p - 1] || tokens[q] != tokens[p];
            }
            if (unique) {
                scored.add(p);
            }
        }
        return new Probe(tokens, scored.stream().mapToInt(Integer::intValue).toArray());
    }

    /** {@code pairs} key=value pairs, filler of {@code distance} tokens, then {@code queries} queries. */
    public static Probe associativeRecall(TextTokenizer tok, long[] filler, int pairs, int queries, int distance,
                                          long seed) {
        Random r = new Random(seed);
        List<String> keys = new ArrayList<>();
        List<Integer> values = new ArrayList<>();
        StringBuilder ctx = new StringBuilder(" ");
        while (keys.size() < pairs) {
            String k = letters(r, 3);
            if (keys.contains(k)) {
                continue;
            }
            keys.add(k);
            values.add(r.nextInt(10));
            ctx.append(k).append('=').append(values.get(values.size() - 1)).append(' ');
        }
        List<Long> t = new ArrayList<>();
        for (long x : tok.encode(ctx.toString(), false)) {
            t.add(x);
        }
        for (long x : fill(filler, distance, r)) {
            t.add(x);
        }
        List<Integer> scored = new ArrayList<>();
        for (int q = 0; q < queries; q++) {
            int i = r.nextInt(pairs);
            for (long x : tok.encode(" " + keys.get(i) + "=", false)) {
                t.add(x);
            }
            scored.add(t.size() - 1);
            for (long x : tok.encode(String.valueOf(values.get(i)), false)) {
                t.add(x);
            }
        }
        return new Probe(t.stream().mapToLong(Long::longValue).toArray(),
                scored.stream().mapToInt(Integer::intValue).toArray());
    }

    /** Fraction of scored positions where {@code argmax[p]} (the model's prediction after token p) is right. */
    public static double accuracy(Probe p, int[] argmax) {
        int hits = 0;
        for (int pos : p.scored()) {
            hits += argmax[pos] == p.tokens()[pos + 1] ? 1 : 0;
        }
        return p.scored().length == 0 ? 0 : (double) hits / p.scored().length;
    }
}
