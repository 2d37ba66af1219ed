package molt.pipeline.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Arrays;
import java.util.Random;
import molt.teacher.model.LanguageModel;

/**
 * Timing single-token decoding the same way everywhere: steps fed greedily (the last row's logits read back to Java
 * and the largest taken, as {@code molt generate} does), timed in windows of steps, a warm-up that runs until
 * consecutive windows agree, and the median window as the rate.
 */
public final class DecodeTiming {
    /** Steps per timed window. */
    public static final int WINDOW = 32;
    /** Warm-up ends once two consecutive windows' rates are within this fraction of each other. */
    public static final double STEADY = 0.03;
    /**
     * Warm-up runs at least this long before it may end: steps in plain Java ({@code DecodeEngine}) run at a steady
     * but lower rate while the JIT is still compiling them (measured: a quickstart student "steady" after 128 steps
     * in 72 ms then decoded at 2,250 tokens/s, against 4,800 a second later).
     */
    public static final long MIN_NANOS = 1_000_000_000L;

    /** How the warm-up went: its time, its steps, and whether it ended steady (not at its limits). */
    public record WarmUp(long nanos, int steps, boolean steady) {
        public double millis() {
            return nanos / 1e6;
        }
    }

    private DecodeTiming() {
    }

    /** Feeds {@code token} on top of {@code state} and returns the greedy next token. */
    public static long step(LanguageModel model, NDManager m, LanguageModel.DecodingState state, long token) {
        try (NDArray logits = model.decode(m, state, new long[][] {{token}})) {
            float[] row = logits.toFloatArray(); // [1, 1, V]
            int best = 0;
            for (int i = 1; i < row.length; i++) {
                if (row[i] > row[best]) {
                    best = i;
                }
            }
            return best;
        }
    }

    /** {@code n} seeded random token ids below {@code vocab}. */
    public static long[] randomTokens(int vocab, int n, long seed) {
        Random r = new Random(seed);
        long[] t = new long[n];
        for (int i = 0; i < n; i++) {
            t[i] = r.nextInt(vocab);
        }
        return t;
    }

    /**
     * Decodes {@code windows} windows of {@link #WINDOW} steps on top of {@code state} and returns each window's
     * tokens/s; the first step is fed {@code first}.
     */
    public static double[] windows(LanguageModel model, NDManager m, LanguageModel.DecodingState state, long first,
                                   int windows) {
        double[] rates = new double[windows];
        long token = first;
        for (int w = 0; w < windows; w++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < WINDOW; i++) {
                token = step(model, m, state, token);
            }
            rates[w] = WINDOW / ((System.nanoTime() - t0) / 1e9);
        }
        return rates;
    }

    /**
     * Warms a model up on a state of its own: a prefill of 64 tokens (fewer for models with few positions), then
     * windows of single steps until two consecutive windows' rates are within {@link #STEADY} (at least three
     * windows and {@link #MIN_NANOS}), or until {@code maxNanos} or the model's positions run out.
     */
    public static WarmUp warmUp(LanguageModel model, long maxNanos) {
        int positions = model.config().maxPositionEmbeddings();
        int prompt = Math.min(64, Math.max(1, positions / 4));
        int maxSteps = positions - prompt;
        long t0 = System.nanoTime();
        int steps = 0;
        boolean steady = false;
        try (NDManager m = NDManager.newBaseManager(model.device());
             LanguageModel.DecodingState st = model.newState()) {
            long[] p = randomTokens(model.config().vocabSize(), prompt, 7);
            model.decode(m, st, new long[][] {p}).close();
            double previous = Double.NaN;
            long token = p[p.length - 1];
            int windows = 0;
            while (steps + WINDOW <= maxSteps && System.nanoTime() - t0 < maxNanos) {
                double rate = windows(model, m, st, token, 1)[0];
                steps += WINDOW;
                windows++;
                token = 1; // any id: the rate does not depend on it
                if (windows >= 3 && System.nanoTime() - t0 >= Math.min(MIN_NANOS, maxNanos)
                        && Math.abs(rate - previous) <= STEADY * previous) {
                    steady = true;
                    break;
                }
                previous = rate;
            }
        }
        return new WarmUp(System.nanoTime() - t0, steps, steady);
    }

    /** The median of {@code rates}. */
    public static double median(double[] rates) {
        double[] s = rates.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
