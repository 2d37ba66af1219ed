package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import molt.student.core.KeyDecay;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import molt.teacher.nd.Scalars;

/**
 * Gated linear attention with a data-dependent decay per key dimension (GLA, Yang et al. 2024), on the shared
 * {@link KeyDecay} core: S_t = diag(exp(gk_t)) S_{t-1} + k_t v_t^T, o_t = q_t^T S_t * scale.
 *
 * <ul>
 *   <li>{@code gla}: gk = logsigmoid(k W1 W2 + b) / 16 with a per-head low-rank gate (rank 16; W1 [H, D, 16],
 *   W2 [H, 16, D], b [H, D]). The gate reads the key (after RoPE) rather than the layer input as GLA does, since
 *   the key is a linear map of that input and is what the student layer hands every mixer. W2 and b start at 0, so
 *   every dimension starts at decay sigmoid(0)^(1/16) = 0.958 per token. Scale 1/sqrt(D), then a per-head RMS norm
 *   with a learned gain [H, D] (GLA's output norm). New parameters: W1, W2, b and the gain.</li>
 *   <li>{@code gla_liger}: Liger's parameter-free form (Lan et al. 2025): gk = logsigmoid(k) / 16 pooled from the key
 *   itself, q and k through a softmax over the head dimension as feature map, scale 1, no normalization. It has no new
 *   parameters: attention transfer has nothing to train for it and reports so.</li>
 * </ul>
 *
 * <p>Shapes: q, k, v [B, H, T, D]; gk [B, H, T, D]; S [B, H, D, D].
 */
public final class GlaMixer implements Mixer {
    public static final String NAME = "gla";
    public static final String LIGER = "gla_liger";
    static final int RANK = 16;
    static final float EPS = 1e-6f;

    private final boolean liger;
    private final MixerSettings settings;
    private final Map<String, NDArray> params = new LinkedHashMap<>();
    private final ai.djl.Device device;

    private GlaMixer(NDManager m, int heads, int headDim, MixerSettings settings, boolean liger) {
        this.liger = liger;
        this.device = m.getDevice();
        this.settings = settings;
        if (!liger) {
            SplittableRandom r = new SplittableRandom(1234);
            float[] w1 = new float[heads * headDim * RANK];
            double bound = 1.0 / Math.sqrt(headDim);
            for (int i = 0; i < w1.length; i++) {
                w1[i] = (float) ((r.nextDouble() * 2 - 1) * bound);
            }
            float[] gain = new float[heads * headDim];
            java.util.Arrays.fill(gain, 1f);
            params.put("gate_down.weight", molt.teacher.nd.NativeArrays.floats(m, w1, new Shape(heads, headDim, RANK)));
            params.put("gate_up.weight", m.zeros(new Shape(heads, RANK, headDim)));
            params.put("gate_up.bias", m.zeros(new Shape(heads, 1, headDim)));
            params.put("output_norm.weight", molt.teacher.nd.NativeArrays.floats(m, gain, new Shape(heads, 1, headDim)));
            params.values().forEach(p -> p.setRequiresGradient(true));
        }
    }

    public static GlaMixer learned(NDManager m, int heads, int headDim, MixerSettings s) {
        return new GlaMixer(m, heads, headDim, s, false);
    }

    public static GlaMixer liger(NDManager m, int heads, int headDim, MixerSettings s) {
        return new GlaMixer(m, heads, headDim, s, true);
    }

    @Override
    public String name() {
        return liger ? LIGER : NAME;
    }

    @Override
    public Map<String, NDArray> parameters() {
        return params;
    }

    /** A parameter in {@code owner}'s manager (results of ops on parameters belong to the parameter's manager). */
    private NDArray p(String name, NDArray owner) {
        NDArray a = params.get(name).expandDims(0); // [1, H, ...]
        a.attach(owner.getManager());
        return a;
    }

    /** logsigmoid(x) = -softplus(-x), computed stably as min(x, 0) - log(1 + exp(-|x|)). */
    private static NDArray logSigmoid(NDArray x) {
        return x.minimum(Scalars.of(0f)).sub(x.abs().neg().exp().add(1f).log());
    }

    /** Per-dimension log-decays [B, H, T, D]. */
    private NDArray gate(NDArray k) {
        if (liger) {
            return logSigmoid(k).div(Scalars.of(16f));
        }
        NDArray low = k.matMul(p("gate_down.weight", k)); // [B, H, T, 16]
        return logSigmoid(low.matMul(p("gate_up.weight", k)).add(p("gate_up.bias", k))).div(Scalars.of(16f)); // [B, H, T, D]
    }

    private NDArray[] features(NDArray q, NDArray k) {
        return liger ? new NDArray[] {q.softmax(-1), k.softmax(-1)} : new NDArray[] {q, k};
    }

    private float scale(NDArray q) {
        return liger ? 1f : (float) (1.0 / Math.sqrt(q.getShape().get(3)));
    }

    private NDArray finish(NDArray o) {
        if (liger) {
            return o;
        }
        NDArray ms = o.square().mean(new int[] {-1}, true); // [B, H, T, 1]
        return o.div(ms.add(EPS).sqrt()).mul(p("output_norm.weight", o));
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDArray[] f = features(in.q(), in.k());
        NDList r = KeyDecay.chunked(scope, f[0], f[1], in.v(), gate(in.k()), scale(in.q()), null, settings.chunkSize());
        RetentionMixer.RetentionState st = null;
        if (withState) {
            st = new RetentionMixer.RetentionState(scope.getDevice());
            st.s = st.own(r.get(1).duplicate());
        }
        return new Output(finish(r.get(0)), st);
    }

    @Override
    public AttentionState newState() {
        return new RetentionMixer.RetentionState(device);
    }

    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        RetentionMixer.RetentionState st = (RetentionMixer.RetentionState) state;
        Shape s = in.q().getShape();
        if (st.s == null) {
            st.s = st.own(scope.zeros(new Shape(s.get(0), s.get(1), s.get(3), in.v().getShape().get(3))));
        }
        NDArray[] f = features(in.q(), in.k());
        NDList r = KeyDecay.step(f[0], f[1], in.v(), gate(in.k()), scale(in.q()), st.s);
        NDArray next = r.get(1);
        next.attach(scope);
        st.s = st.swap(st.s, next.duplicate());
        return finish(r.get(0));
    }
}
