package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Map;
import molt.student.core.HedgehogFeatureMap;
import molt.student.core.HedgehogState;
import molt.student.core.HedgehogStep;
import molt.student.core.WindowedLinearAttention;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;

/**
 * {@code hedgehog_window}, LoLCATs' default: softmax attention over a sliding window of the w most recent tokens plus
 * Hedgehog linear attention over everything before it, sharing one normalizer ({@link WindowedLinearAttention}). The
 * window's weight is g_h = sigmoid(f_h), f_h a learned per-head scalar started at -2.197 (g = 0.1). Training and
 * decoding use exactly this window (not LoLCATs' 64-127-token block window). The chunk size must be at least w.
 *
 * <p>Shapes: q, k, v [B, H, T, D]; phi [B, H, T, 2F]; feature maps [H, D, F]; f [H].
 */
public final class HedgehogWindowMixer extends BaseMixer {
    public static final String NAME = "hedgehog_window";

    private final NDArray wq;
    private final NDArray wk;
    private final NDArray factor;

    public HedgehogWindowMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        super(NAME, m, settings, shapes(heads, headDim, 0, settings), HedgehogState::new);
        requireChunkAtLeastWindow();
        this.wq = param("feature_map_q.weight", HedgehogFeatureMap.init(m, heads, headDim, settings.featureDim()));
        this.wk = param("feature_map_k.weight", HedgehogFeatureMap.init(m, heads, headDim, settings.featureDim()));
        this.factor = constant("window_factor", m, (float) settings.windowFactorInit());
    }

    /** Hedgehog's feature maps, then the window factor f [H]. */
    static Map<String, Shape> shapes(int heads, int headDim, int modelDim, MixerSettings settings) {
        Map<String, Shape> p = HedgehogMixer.shapes(heads, headDim, modelDim, settings);
        p.put("window_factor", new Shape(heads));
        return p;
    }

    /** sigmoid(f) as [1, H, 1, 1], owned by {@code owner}'s manager. */
    private NDArray gate(NDArray owner) {
        return headGate(factor, owner);
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDArray fq = HedgehogFeatureMap.apply(in.q(), wq); // [B, H, T, 2F]
        NDArray fk = HedgehogFeatureMap.apply(in.k(), wk); // [B, H, T, 2F]
        NDList r = WindowedLinearAttention.chunked(scope, in, fq, fk, gate(in.q()), settings.chunkSize(),
                settings.window(), withState);
        HedgehogState st = null;
        if (withState) {
            st = HedgehogState.after(scope, r.get(1), r.get(2)); // S, z of the tokens before the last window
            st.window().fill(scope, in.k(), in.v(), settings.window());
        }
        return new Output(r.get(0), st);
    }


    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        NDArray fq = HedgehogFeatureMap.step(in.q(), wq); // [B, H, 1, 2F]
        return WindowedLinearAttention.step(scope, (HedgehogState) state, in, fq, k -> HedgehogFeatureMap.step(k, wk),
                gate(in.q()), settings.window());
    }

    /** {@link HedgehogStep} with the window, from a copy of the prefilled state; g_h = sigmoid(f_h). */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        return HedgehogStep.of((HedgehogState) prefilled, wq, wk, headGateValues(factor), settings.window(), kvGroups);
    }
}
