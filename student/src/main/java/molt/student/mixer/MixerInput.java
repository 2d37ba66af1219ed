package molt.student.mixer;

import ai.djl.ndarray.NDArray;

/**
 * What a student layer hands its mixer. Linear-attention mixers read q, k and v (after RoPE and after the GQA
 * repeat); state-space mixers may read the normed hidden state instead. Fields a caller cannot supply are null.
 *
 * @param hidden the layer's normed input [B, T, H_model], or null
 * @param q queries after RoPE [B, H, T, D]
 * @param k keys after RoPE, repeated to the query heads [B, H, T, D]
 * @param v values, repeated to the query heads [B, H, T, D]
 * @param qRaw queries before RoPE [B, H, T, D], or null
 * @param kRaw keys before RoPE, repeated to the query heads [B, H, T, D], or null
 */
public record MixerInput(NDArray hidden, NDArray q, NDArray k, NDArray v, NDArray qRaw, NDArray kRaw) {

    public MixerInput(NDArray hidden, NDArray q, NDArray k, NDArray v) {
        this(hidden, q, k, v, null, null);
    }

    public static MixerInput qkv(NDArray q, NDArray k, NDArray v) {
        return new MixerInput(null, q, k, v);
    }

    public long batch() {
        return q.getShape().get(0);
    }

    public long time() {
        return q.getShape().get(2);
    }
}
