package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import molt.student.core.DeltaRule;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import molt.teacher.nd.Scalars;

/**
 * {@code gated_deltanet} (Yang et al. 2025) on the shared {@link DeltaRule} core, initialized from an attention
 * layer: q, k, v are the layer's projections (before RoPE, which the delta rule does not use; GQA heads repeated),
 * each through a short convolution and SiLU, q and k L2-normalized per head; beta = sigmoid(hidden W_beta);
 * g = -exp(A_log) softplus(hidden W_a + dt_bias); o = rmsnorm_per_head(DeltaRule(q, k, v) / sqrt(D)) * w *
 * silu(hidden W_gate); the layer's o_proj follows. New parameters at standard inits: the three convolutions, W_beta,
 * W_a, dt_bias, A_log (A uniform in [1, 16]), W_gate, the norm weight (1). The decoding state holds S [B, H, D, D]
 * and the three convolution windows.
 *
 * <p>Shapes: q, k (raw), v [B, H, T, D]; hidden [B, T, M]; output [B, H, T, D].
 */
public final class GatedDeltaNetMixer implements Mixer {
    public static final String NAME = "gated_deltanet";
    static final float EPS = 1e-6f;
    private static final String[] CONVS = {"conv_v", "conv_k", "conv_q"};

    private final MixerSettings settings;
    private final int heads;
    private final int headDim;
    private final ai.djl.Device device;
    private final Map<String, NDArray> params = new LinkedHashMap<>();

    public GatedDeltaNetMixer(NDManager m, int heads, int headDim, int modelDim, MixerSettings settings) {
        this.settings = settings;
        this.heads = heads;
        this.headDim = headDim;
        this.device = m.getDevice();
        SplittableRandom r = new SplittableRandom(20250);
        for (String c : CONVS) {
            params.put(c + ".weight", SsmInit.uniform(m, r, new Shape(heads, headDim, ShortConv.WIDTH), 0.5));
            params.put(c + ".bias", SsmInit.uniform(m, r, new Shape(heads, headDim), 0.5));
        }
        double bound = 1 / Math.sqrt(modelDim);
        params.put("beta_proj.weight", SsmInit.uniform(m, r, new Shape(modelDim, heads), bound));
        params.put("a_proj.weight", SsmInit.uniform(m, r, new Shape(modelDim, heads), bound));
        NDArray[] dtA = SsmInit.dtBiasAndALog(m, r, heads);
        params.put("dt_bias", dtA[0]);
        params.put("A_log", dtA[1]);
        params.put("gate_proj.weight", SsmInit.uniform(m, r, new Shape(modelDim, heads * headDim), bound));
        params.put("norm.weight", m.ones(new Shape(heads, headDim)));
        params.values().forEach(p -> p.setRequiresGradient(true));
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, NDArray> parameters() {
        return params;
    }

    private NDArray p(String name, NDArray owner) {
        NDArray a = params.get(name).reshape(params.get(name).getShape()); // a view that can leave the parameter's manager
        a.attach(owner.getManager());
        return a;
    }

    private NDArray conv(NDArray x, NDArray before, String name) {
        return ShortConv.apply(x, before, p(name + ".weight", x).expandDims(0),
                p(name + ".bias", x).reshape(1, heads, 1, headDim));
    }

    private static NDArray l2norm(NDArray x) {
        return x.div(x.square().sum(new int[] {-1}, true).add(EPS).sqrt());
    }

    /** beta and g [B, H, T] from the hidden state [B, T, M]. */
    private NDArray[] gates(NDArray hidden) {
        NDArray beta = hidden.matMul(p("beta_proj.weight", hidden)).getNDArrayInternal().sigmoid(); // [B, T, H]
        NDArray pre = hidden.matMul(p("a_proj.weight", hidden)).add(p("dt_bias", hidden));
        NDArray softplus = pre.maximum(Scalars.of(0f)).add(pre.abs().neg().exp().add(1f).log());
        NDArray g = softplus.mul(p("A_log", hidden).exp().neg()); // [B, T, H]
        return new NDArray[] {beta.transpose(0, 2, 1), g.transpose(0, 2, 1)};
    }

    private NDArray finish(NDArray o, NDArray hidden) {
        Shape hs = hidden.getShape();
        NDArray gate = hidden.matMul(p("gate_proj.weight", hidden))
                .reshape(hs.get(0), hs.get(1), heads, headDim).transpose(0, 2, 1, 3); // [B, H, T, D]
        NDArray ms = o.square().mean(new int[] {-1}, true);
        NDArray normed = o.div(ms.add(EPS).sqrt()).mul(p("norm.weight", o).reshape(1, heads, 1, headDim));
        return normed.mul(gate.mul(gate.getNDArrayInternal().sigmoid()));
    }

    private static void require(AttentionInput in) {
        if (in.hidden() == null || in.qRaw() == null || in.kRaw() == null) {
            throw new IllegalArgumentException("gated_deltanet needs the layer's normed hidden state and q, k before RoPE");
        }
    }

    private float scale() {
        return (float) (1.0 / Math.sqrt(headDim));
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        require(in);
        Shape s = in.v().getShape();
        NDArray zeros = scope.zeros(new Shape(s.get(0), s.get(1), ShortConv.WIDTH - 1, s.get(3)));
        NDArray v = conv(in.v(), zeros, "conv_v");
        NDArray k = l2norm(conv(in.kRaw(), zeros, "conv_k"));
        NDArray q = l2norm(conv(in.qRaw(), zeros, "conv_q"));
        NDArray[] bg = gates(in.hidden());
        NDList r = DeltaRule.chunked(scope, q, k, v, bg[0], bg[1], scale(), null, settings.chunkSize());
        Mamba2Mixer.Mamba2State st = null;
        if (withState) {
            st = new Mamba2Mixer.Mamba2State(scope.getDevice());
            st.s = st.own(r.get(1).duplicate());
            long t = s.get(2);
            NDArray[] src = {in.v(), in.kRaw(), in.qRaw()};
            for (int i = 0; i < 3; i++) {
                st.windows[i] = st.own(zeros.concat(src[i], 2).get(":, :, " + t + ":" + (t + ShortConv.WIDTH - 1)).duplicate());
            }
        }
        return new Output(finish(r.get(0), in.hidden()), st);
    }

    @Override
    public AttentionState newState() {
        return new Mamba2Mixer.Mamba2State(device);
    }

    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        require(in);
        Mamba2Mixer.Mamba2State st = (Mamba2Mixer.Mamba2State) state;
        Shape s = in.v().getShape();
        if (st.s == null) {
            st.s = st.own(scope.zeros(new Shape(s.get(0), s.get(1), s.get(3), s.get(3))));
            for (int i = 0; i < 3; i++) {
                st.windows[i] = st.own(scope.zeros(new Shape(s.get(0), s.get(1), ShortConv.WIDTH - 1, s.get(3))));
            }
        }
        NDArray[] src = {in.v(), in.kRaw(), in.qRaw()};
        NDArray[] conv = new NDArray[3];
        for (int i = 0; i < 3; i++) {
            NDArray before = st.windows[i].duplicate();
            before.attach(scope);
            conv[i] = conv(src[i], before, CONVS[i]);
            st.windows[i] = st.swap(st.windows[i], before.concat(src[i], 2).get(":, :, 1:").duplicate());
        }
        NDArray[] bg = gates(in.hidden());
        NDArray sIn = st.s.duplicate();
        sIn.attach(scope);
        NDList r = DeltaRule.step(l2norm(conv[2]), l2norm(conv[1]), conv[0], bg[0], bg[1], scale(), sIn);
        st.s = st.swap(st.s, r.get(1).duplicate());
        return finish(r.get(0), in.hidden());
    }
}
