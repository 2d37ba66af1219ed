package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import molt.teacher.cpu.Kernels;
import molt.teacher.nd.NativeArrays;

/**
 * The sliding window of the plain-Java decoding steps ({@link HedgehogStep}, the windowed mixers' step): the keys
 * and values of the n <= w most recent tokens per query head, in a ring of w slots [H, w, D] per array, read oldest
 * first (the order of {@link WindowBuffer}). Scores are q.k / sqrt(D).
 */
public final class WindowRing {
    /** Receives the oldest token of head h, at {@code off} in {@code keys} and {@code values}, as it leaves. */
    @FunctionalInterface
    public interface Leaving {
        void accept(int head, float[] keys, float[] values, int off);
    }

    private final int heads;
    private final int d;
    private final int w;
    private final float scale;
    private final float[] keys;
    private final float[] values;
    private final float[] scores;
    private int start;
    private int n;

    public WindowRing(int heads, int d, int window) {
        this.heads = heads;
        this.d = d;
        this.w = window;
        this.scale = (float) (1.0 / Math.sqrt(d));
        this.keys = new float[heads * window * d];
        this.values = new float[heads * window * d];
        this.scores = new float[window];
    }

    /** A ring holding the engine window's tokens (batch 1), or null for a larger batch. */
    public static WindowRing of(WindowBuffer buffer, int heads, int d, int window, ai.djl.Device device) {
        WindowRing r = new WindowRing(heads, d, window);
        if (buffer.size() == 0) {
            return r;
        }
        try (NDManager scope = NDManager.newBaseManager(device)) {
            NDArray k = buffer.keys(scope); // [B, H, n, D]
            if (k.getShape().get(0) != 1) {
                return null;
            }
            float[] kv = NativeArrays.values(k);
            float[] vv = NativeArrays.values(buffer.values(scope));
            r.n = Math.toIntExact(buffer.size());
            for (int h = 0; h < heads; h++) {
                System.arraycopy(kv, h * r.n * d, r.keys, h * window * d, r.n * d);
                System.arraycopy(vv, h * r.n * d, r.values, h * window * d, r.n * d);
            }
        }
        return r;
    }

    /** Tokens held (n). */
    public int size() {
        return n;
    }

    /**
     * Appends one token: k, v [Hkv * D], query head h taking key/value head h / groups. When w tokens are held the
     * oldest of each head goes to {@code leaving} (if not null) before its slot is reused.
     */
    public void push(float[] k, float[] v, int groups, Leaving leaving) {
        int slot = (start + n) % w;
        for (int h = 0; h < heads; h++) {
            int base = h * w * d;
            if (n == w && leaving != null) {
                leaving.accept(h, keys, values, base + start * d);
            }
            System.arraycopy(k, (h / groups) * d, keys, base + slot * d, d);
            System.arraycopy(v, (h / groups) * d, values, base + slot * d, d);
        }
        if (n == w) {
            start = (start + 1) % w;
        } else {
            n++;
        }
    }

    /**
     * Head h's window read by q (at {@code qOff}): adds sum_s e_s v_s to out[outOff ..] and returns sum_s e_s, with
     * e_s = gate exp(q.k_s / sqrt(D) - max_s), oldest token first.
     */
    public float attend(float[] q, int qOff, int h, float gate, float[] out, int outOff) {
        int base = h * w * d;
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            scores[j] = Kernels.dot(q, qOff, keys, base + ((start + j) % w) * d, d) * scale;
            max = Math.max(max, scores[j]);
        }
        float sum = 0;
        for (int j = 0; j < n; j++) {
            float e = (float) Math.exp(scores[j] - max) * gate;
            sum += e;
            Kernels.axpy(e, values, base + ((start + j) % w) * d, out, outOff, d);
        }
        return sum;
    }

    /** Head h's softmax attention over the window for q (at {@code qOff}), written to out[outOff .. outOff + D). */
    public void softmax(float[] q, int qOff, int h, float[] out, int outOff) {
        java.util.Arrays.fill(out, outOff, outOff + d, 0f);
        float inv = 1f / attend(q, qOff, h, 1f, out, outOff);
        for (int j = outOff; j < outOff + d; j++) {
            out[j] *= inv;
        }
    }

    /** Bytes of the keys and values held, as the engine's window counts them (n tokens, 4 bytes each). */
    public long bytes() {
        return 2L * heads * n * d * Float.BYTES;
    }
}
