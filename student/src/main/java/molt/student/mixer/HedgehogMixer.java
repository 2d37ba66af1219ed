package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.student.core.HedgehogFeatureMap;
import molt.student.core.HedgehogState;
import molt.student.core.LinearAttention;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;

/**
 * {@code hedgehog}: LoLCATs' linear attention with learned Hedgehog feature maps on q and k (untied, per head;
 * {@link HedgehogFeatureMap}): y_t = phi_q(q_t)^T S_t / (phi_q(q_t)^T z_t), S_t = sum_{s<=t} phi_k(k_s) v_s^T,
 * z_t = sum_{s<=t} phi_k(k_s), with no 1/sqrt(D) scale, all in fp32 ({@link LinearAttention}).
 *
 * <p>Shapes: q, k, v [B, H, T, D]; phi [B, H, T, 2F]; S [B, H, 2F, D]; z [B, H, 2F, 1]; feature maps [H, D, F].
 */
public final class HedgehogMixer extends BaseMixer {
    public static final String NAME = "hedgehog";

    private final NDArray wq;
    private final NDArray wk;

    /** A mixer for {@code heads} heads of dim {@code headDim} at the identity init; parameters live in {@code m}. */
    public HedgehogMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        super(NAME, m, settings, shapes(heads, headDim, 0, settings), HedgehogState::new);
        this.wq = param("feature_map_q.weight", HedgehogFeatureMap.init(m, heads, headDim, settings.featureDim()));
        this.wk = param("feature_map_k.weight", HedgehogFeatureMap.init(m, heads, headDim, settings.featureDim()));
    }

    /** The parameters' names and shapes, in creation order. */
    static Map<String, Shape> shapes(int heads, int headDim, int modelDim, MixerSettings settings) {
        Map<String, Shape> p = new LinkedHashMap<>();
        p.put("feature_map_q.weight", new Shape(heads, headDim, settings.featureDim()));
        p.put("feature_map_k.weight", new Shape(heads, headDim, settings.featureDim()));
        return p;
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDArray fq = HedgehogFeatureMap.apply(in.q(), wq); // [B, H, T, 2F]
        NDArray fk = HedgehogFeatureMap.apply(in.k(), wk); // [B, H, T, 2F]
        NDList r = LinearAttention.chunked(scope, fq, fk, in.v(), settings.chunkSize());
        return new Output(r.get(0), withState ? HedgehogState.after(scope, r.get(1), r.get(2)) : null);
    }


    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        NDArray fq = HedgehogFeatureMap.step(in.q(), wq); // [B, H, 1, 2F]
        NDArray fk = HedgehogFeatureMap.step(in.k(), wk); // [B, H, 1, 2F]
        return LinearAttention.step((HedgehogState) state, fq, fk, in.v());
    }

    /** {@link HedgehogStep} without a window, from a copy of the prefilled S and z. */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        return molt.student.core.HedgehogStep.of((HedgehogState) prefilled, wq, wk, null, 0, kvGroups);
    }
}
