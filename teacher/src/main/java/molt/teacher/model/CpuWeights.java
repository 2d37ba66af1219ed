package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import java.util.Map;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.Projection;
import molt.teacher.nd.NativeArrays;

/**
 * A model's frozen weights as Java arrays, for decoding in plain Java ({@link CpuDecoding}): per layer the norms,
 * each projection's effective W^T [in, out] (what the projector applies: a student's merged low-rank update
 * included) and bias; the embedding [V, H], the final norm and the LM head, as W^T [H, V] or, when tied, the
 * embedding itself read row-wise. A copy: 4 bytes per parameter beside the engine's own.
 */
final class CpuWeights {
    final float[][] inputNorm;
    final float[][] postNorm;
    /** [layer][projection ordinal] W^T [in, out]. */
    final float[][][] weightsT;
    /** [layer][projection ordinal] b [out], or null. */
    final float[][][] biases;
    final float[] embed;
    final float[] norm;
    /** W^T [H, V], or null when the head is tied to {@link #embed}. */
    final float[] headT;

    private CpuWeights(float[][] inputNorm, float[][] postNorm, float[][][] weightsT, float[][][] biases, float[] embed,
                       float[] norm, float[] headT) {
        this.inputNorm = inputNorm;
        this.postNorm = postNorm;
        this.weightsT = weightsT;
        this.biases = biases;
        this.embed = embed;
        this.norm = norm;
        this.headT = headT;
    }

    /** The weights of {@code stored} (F32, projections transposed) as {@code projector} applies them. */
    static CpuWeights of(LlamaConfig c, Map<String, NDArray> stored, Projector projector) {
        int layers = c.numLayers();
        float[][] inputNorm = new float[layers][];
        float[][] postNorm = new float[layers][];
        float[][][] weightsT = new float[layers][Projection.values().length][];
        float[][][] biases = new float[layers][Projection.values().length][];
        for (int i = 0; i < layers; i++) {
            inputNorm[i] = NativeArrays.values(stored.get(LlamaWeights.layer(i, "input_layernorm.weight")));
            postNorm[i] = NativeArrays.values(stored.get(LlamaWeights.layer(i, "post_attention_layernorm.weight")));
            for (Projection p : Projection.values()) {
                float[] wT = NativeArrays.values(stored.get(p.prefix(i) + "weight"));
                weightsT[i][p.ordinal()] = projector.effectiveWeightT(i, p, wT);
                NDArray b = stored.get(p.prefix(i) + "bias");
                biases[i][p.ordinal()] = b == null ? null : NativeArrays.values(b);
            }
        }
        NDArray head = stored.get("lm_head.weight");
        return new CpuWeights(inputNorm, postNorm, weightsT, biases,
                NativeArrays.values(stored.get("model.embed_tokens.weight")),
                NativeArrays.values(stored.get("model.norm.weight")), head == null ? null : NativeArrays.values(head));
    }
}
