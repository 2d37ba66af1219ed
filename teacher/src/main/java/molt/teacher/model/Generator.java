package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Arrays;

/** Prompt in, continuation out: prefill once, then one decoding step per new token. */
public final class Generator {

    /** Generated ids and timings (prefill and decoding measured separately). */
    public record Result(long[] tokens, long prefillNanos, long decodeNanos, int promptTokens, long stateBytes) {
        public double prefillTokensPerSecond() {
            return prefillNanos == 0 ? 0 : promptTokens / (prefillNanos / 1e9);
        }

        public double decodeTokensPerSecond() {
            return decodeNanos == 0 || tokens.length <= 1 ? 0 : (tokens.length - 1) / (decodeNanos / 1e9);
        }
    }

    private Generator() {
    }

    /**
     * Generates up to {@code maxTokens} ids after {@code prompt}, stopping early at any of {@code stopIds}
     * (the stop id is included in the result).
     */
    public static Result generate(LanguageModel model, long[] prompt, int maxTokens, Sampler sampler, long[] stopIds) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt must hold at least one token");
        }
        long[] out = new long[maxTokens];
        int n = 0;
        long t0 = System.nanoTime();
        long prefill = 0;
        long bytes;
        try (NDManager m = NDManager.newBaseManager(model.device());
             LanguageModel.DecodingState state = model.newState()) {
            float[] last = lastRow(model.decode(m, state, new long[][] {prompt}));
            prefill = System.nanoTime() - t0;
            long t1 = System.nanoTime();
            while (n < maxTokens) {
                int next = sampler.next(last);
                out[n++] = next;
                if (contains(stopIds, next) || n == maxTokens) {
                    break;
                }
                last = lastRow(model.decode(m, state, new long[][] {{next}}));
            }
            bytes = state.bytes();
            return new Result(Arrays.copyOf(out, n), prefill, System.nanoTime() - t1, prompt.length, bytes);
        }
    }

    private static float[] lastRow(NDArray logits) {
        try (logits) {
            long t = logits.getShape().get(1);
            if (t == 1 && logits.getShape().get(0) == 1) {
                return logits.toFloatArray(); // a decoding step's [1, 1, V] is its row
            }
            try (NDArray row = logits.get("0, " + (t - 1))) {
                return row.toFloatArray();
            }
        }
    }

    private static boolean contains(long[] ids, long id) {
        for (long x : ids) {
            if (x == id) {
                return true;
            }
        }
        return false;
    }
}
