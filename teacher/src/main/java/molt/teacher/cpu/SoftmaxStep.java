package molt.teacher.cpu;

/**
 * Softmax attention's recurrent form in plain Java (the teacher's KV cache): each step appends its key and value
 * and attends over every cached token, scale 1/sqrt(D), query head h reading key/value head h / groups (GQA).
 *
 * <p>Layouts per key/value head: keys transposed, [D, capacity] (key t's entry j at j * capacity + t), so the
 * scores of all tokens are one {@link Kernels#addMatVec} over the query's D entries; values [capacity, D], so the
 * output is one over the tokens' weights. Capacity grows by a quarter, rounded up to 256 tokens, as the engine's
 * cache does.
 */
public final class SoftmaxStep implements CpuStep {
    private static final int GROWTH = 256;

    private final int heads;
    private final int kvHeads;
    private final int d;
    private final int groups;
    private final float scale;
    private float[][] keysT;
    private float[][] values;
    private int capacity;
    private int length;
    private float[] scores = new float[0];
    private final float[] scaled;

    /**
     * A cache holding {@code length} prefilled tokens: keys and values [Hkv, length, D] (row-major, keys after
     * RoPE), for {@code heads} query heads of dim d.
     */
    public SoftmaxStep(int heads, int kvHeads, int d, float[] keys, float[] vals, int length) {
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("query heads " + heads + " must be a multiple of key/value heads "
                    + kvHeads);
        }
        if (keys.length != (long) kvHeads * length * d || vals.length != keys.length) {
            throw new IllegalArgumentException("expected keys and values [" + kvHeads + ", " + length + ", " + d
                    + "], found " + keys.length + " and " + vals.length + " values");
        }
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.d = d;
        this.groups = heads / kvHeads;
        this.scale = (float) (1.0 / Math.sqrt(d));
        this.scaled = new float[d];
        this.keysT = new float[kvHeads][0];
        this.values = new float[kvHeads][0];
        grow(length);
        for (int h = 0; h < kvHeads; h++) {
            for (int t = 0; t < length; t++) {
                int src = (h * length + t) * d;
                for (int j = 0; j < d; j++) {
                    keysT[h][j * capacity + t] = keys[src + j];
                }
                System.arraycopy(vals, src, values[h], t * d, d);
            }
        }
        this.length = length;
    }

    /** Tokens cached. */
    public int length() {
        return length;
    }

    /** Room for at least {@code need} tokens, keeping the cached ones. */
    private void grow(int need) {
        if (need <= capacity) {
            return;
        }
        int grown = Math.max(need, capacity + capacity / 4);
        grown = (grown + GROWTH - 1) / GROWTH * GROWTH;
        for (int h = 0; h < kvHeads; h++) {
            float[] k = new float[d * grown]; // [D, grown]
            for (int j = 0; j < d; j++) {
                System.arraycopy(keysT[h], j * capacity, k, j * grown, length);
            }
            keysT[h] = k;
            values[h] = java.util.Arrays.copyOf(values[h], grown * d); // [grown, D]
        }
        capacity = grown;
        scores = new float[grown];
    }

    @Override
    public void step(Input in, float[] out) {
        float[] q = in.q;
        float[] k = in.k;
        float[] v = in.v;
        grow(length + 1);
        for (int h = 0; h < kvHeads; h++) {
            for (int j = 0; j < d; j++) {
                keysT[h][j * capacity + length] = k[h * d + j];
            }
            System.arraycopy(v, h * d, values[h], length * d, d);
        }
        length++;
        for (int h = 0; h < heads; h++) {
            int kv = h / groups;
            for (int j = 0; j < d; j++) {
                scaled[j] = q[h * d + j] * scale;
            }
            java.util.Arrays.fill(scores, 0, length, 0f);
            Kernels.addMatVec(scaled, 0, keysT[kv], 0, capacity, d, length, scores, 0); // [length]
            Kernels.softmax(scores, 0, length);
            java.util.Arrays.fill(out, h * d, (h + 1) * d, 0f);
            Kernels.addMatVec(scores, 0, values[kv], 0, d, length, d, out, h * d); // [D]
        }
    }

    /** Keys and values of the cached tokens, 4 bytes each (as the engine's F32 cache counts them). */
    @Override
    public long bytes() {
        return 2L * kvHeads * length * d * Float.BYTES;
    }
}
