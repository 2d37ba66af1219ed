package molt.teacher.model;

import java.util.function.Supplier;

import ai.djl.ndarray.NDArray;

/**
 * What a decoder layer hands its attention core. Linear-attention mixers and softmax attention read q, k and v
 * (after RoPE, keys and values repeated to the query heads); state-space mixers may read the normed hidden state or
 * q and k before RoPE instead. Softmax attention's KV cache keeps the keys and values before the GQA repeat
 * ({@link #kvKeys}, {@link #kvValues}). The repeated views are built on first use, in the keys' manager (the
 * caller's scope), and so are a recording's normed input and q, k before RoPE ({@link #recorded}), which most cores
 * never read. Fields a caller cannot supply are null.
 *
 * <p>Shapes: B batch, H query heads, Hkv key/value heads, T time, D head dim, H_model the model width.
 */
public final class AttentionInput {
    private final NDArray q;
    private final NDArray keys;
    private final NDArray values;
    private final int groups;
    private Supplier<NDArray> hiddenSource;
    private Supplier<NDArray> qRawSource;
    private Supplier<NDArray> kRawKvSource;
    private NDArray hidden;
    private NDArray qRaw;
    private NDArray kRawKv;
    private NDArray k;
    private NDArray v;
    private NDArray kRaw;

    private AttentionInput(Supplier<NDArray> hidden, NDArray q, NDArray keys, NDArray values, Supplier<NDArray> qRaw,
                           Supplier<NDArray> kRawKv, int groups) {
        this.hiddenSource = hidden;
        this.q = q;
        this.keys = keys;
        this.values = values;
        this.qRawSource = qRaw;
        this.kRawKvSource = kRawKv;
        this.groups = groups;
    }

    private AttentionInput(NDArray hidden, NDArray q, NDArray keys, NDArray values, NDArray qRaw, NDArray kRawKv,
                           int groups) {
        this(() -> hidden, q, keys, values, () -> qRaw, () -> kRawKv, groups);
    }

    /**
     * Inputs whose keys and values are already at the query heads (groups = 1).
     *
     * @param hidden the layer's normed input [B, T, H_model], or null
     * @param q queries after RoPE [B, H, T, D]
     * @param k keys after RoPE [B, H, T, D]
     * @param v values [B, H, T, D]
     * @param qRaw queries before RoPE [B, H, T, D], or null
     * @param kRaw keys before RoPE [B, H, T, D], or null
     */
    public AttentionInput(NDArray hidden, NDArray q, NDArray k, NDArray v, NDArray qRaw, NDArray kRaw) {
        this(hidden, q, k, v, qRaw, kRaw, 1);
    }

    public AttentionInput(NDArray hidden, NDArray q, NDArray k, NDArray v) {
        this(hidden, q, k, v, null, null, 1);
    }

    public static AttentionInput qkv(NDArray q, NDArray k, NDArray v) {
        return new AttentionInput(null, q, k, v);
    }

    /**
     * Inputs with keys and values at their own Hkv heads [B, Hkv, T, D], each serving {@code groups} query heads
     * (grouped-query attention); kRaw [B, Hkv, T, D] may be null.
     */
    public static AttentionInput grouped(NDArray hidden, NDArray q, NDArray k, NDArray v, NDArray qRaw,
                                         NDArray kRaw, int groups) {
        return new AttentionInput(hidden, q, k, v, qRaw, kRaw, groups);
    }

    /**
     * {@link #grouped} for a recording, with the normed input and q, k before RoPE computed on first use (each
     * supplier runs at most once; they may return null).
     */
    public static AttentionInput recorded(Supplier<NDArray> hidden, NDArray q, NDArray k, NDArray v,
                                          Supplier<NDArray> qRaw, Supplier<NDArray> kRaw, int groups) {
        return new AttentionInput(hidden, q, k, v, qRaw, kRaw, groups);
    }

    /** The layer's normed input [B, T, H_model], or null. */
    public NDArray hidden() {
        if (hiddenSource != null) {
            hidden = hiddenSource.get();
            hiddenSource = null;
        }
        return hidden;
    }

    /** Queries after RoPE [B, H, T, D]. */
    public NDArray q() {
        return q;
    }

    /** Keys after RoPE, repeated to the query heads [B, H, T, D]. */
    public NDArray k() {
        if (k == null) {
            k = LlamaBlocks.repeatKv(keys, groups);
        }
        return k;
    }

    /** Values repeated to the query heads [B, H, T, D]. */
    public NDArray v() {
        if (v == null) {
            v = LlamaBlocks.repeatKv(values, groups);
        }
        return v;
    }

    /** Queries before RoPE [B, H, T, D], or null. */
    public NDArray qRaw() {
        if (qRawSource != null) {
            qRaw = qRawSource.get();
            qRawSource = null;
        }
        return qRaw;
    }

    /** Keys before RoPE, repeated to the query heads [B, H, T, D], or null. */
    public NDArray kRaw() {
        if (kRawKvSource != null) {
            kRawKv = kRawKvSource.get();
            kRawKvSource = null;
        }
        if (kRaw == null && kRawKv != null) {
            kRaw = LlamaBlocks.repeatKv(kRawKv, groups);
        }
        return kRaw;
    }

    /** Keys after RoPE at their own heads [B, Hkv, T, D] (what a KV cache keeps). */
    public NDArray kvKeys() {
        return keys;
    }

    /** Values at their own heads [B, Hkv, T, D]. */
    public NDArray kvValues() {
        return values;
    }

    /** Query heads per key/value head. */
    public int groups() {
        return groups;
    }

    public long batch() {
        return q.getShape().get(0);
    }

    public long time() {
        return q.getShape().get(2);
    }
}
