package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import molt.student.core.ScalarDecay;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import molt.teacher.nd.Scalars;

/**
 * {@code mamba2}: the selective state-space mixer of Mamba-2 (Dao and Gu 2024), initialized from an attention
 * layer as in "Mamba in the Llama" (Wang et al. 2024): x comes from the value projection, B from the key and C from
 * the query (both before RoPE, which is dropped; GQA heads already repeated), out_proj is the layer's o_proj (the
 * student layer applies it). Each attention head is one SSM head with state size = head dim; no 1/sqrt(D) scale.
 *
 * <pre>
 *   x, B, C = silu(causal depthwise conv, width 4, of v, k, q)     per channel, with bias
 *   dt = softplus(hidden W_dt + dt_bias)  [B, H, T];  A = -exp(A_log);  g = dt * A  (log-decay, <= 0)
 *   S_t = exp(g_t) S_{t-1} + B_t (dt_t x_t)^T;  y_t = C_t^T S_t + D * x_t        (the scalar-decay core)
 *   out = rmsnorm_per_head(y * silu(hidden W_z)) * norm_weight
 * </pre>
 *
 * New parameters at Mamba's standard inits: conv weights [H, D, 4] and biases [H, D] for x, B, C (uniform
 * +-1/2, as a width-4 conv is initialized), W_z [M, H*D] and W_dt [M, H] (uniform +-1/sqrt(M)), dt_bias (the inverse
 * softplus of dt log-uniform in [0.001, 0.1]), A_log = log(A) with A uniform in [1, 16], D = 1, norm weight = 1. The
 * decoding state holds S [B, H, D, D] and the last 3 inputs of each convolution.
 *
 * <p>Shapes: inputs [B, H, T, D] (q, k raw; v), hidden [B, T, M]; output [B, H, T, D].
 */
public final class Mamba2Mixer implements Mixer {
    public static final String NAME = "mamba2";
    static final int WIDTH = 4;
    static final float EPS = 1e-6f;
    private static final String[] CONVS = {"conv_x", "conv_b", "conv_c"};

    private final MixerSettings settings;
    private final int heads;
    private final int headDim;
    private final Map<String, NDArray> params = new LinkedHashMap<>();
    private final ai.djl.Device device;

    public Mamba2Mixer(NDManager m, int heads, int headDim, int modelDim, MixerSettings settings) {
        this.settings = settings;
        this.heads = heads;
        this.headDim = headDim;
        this.device = m.getDevice();
        SplittableRandom r = new SplittableRandom(20240);
        for (String c : CONVS) {
            params.put(c + ".weight", SsmInit.uniform(m, r, new Shape(heads, headDim, WIDTH), 0.5));
            params.put(c + ".bias", SsmInit.uniform(m, r, new Shape(heads, headDim), 0.5));
        }
        params.put("z_proj.weight", SsmInit.uniform(m, r, new Shape(modelDim, heads * headDim), 1 / Math.sqrt(modelDim)));
        params.put("dt_proj.weight", SsmInit.uniform(m, r, new Shape(modelDim, heads), 1 / Math.sqrt(modelDim)));
        NDArray[] dtA = SsmInit.dtBiasAndALog(m, r, heads);
        params.put("dt_bias", dtA[0]);
        params.put("A_log", dtA[1]);
        params.put("D", m.ones(new Shape(heads)));
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

    /** A parameter moved into {@code owner}'s manager view (ops on parameters land in the parameter's manager). */
    private NDArray p(String name, NDArray owner) {
        NDArray a = params.get(name).reshape(params.get(name).getShape()); // a view that can leave the parameter's manager
        a.attach(owner.getManager());
        return a;
    }

    private static NDArray silu(NDArray x) {
        return x.mul(x.getNDArrayInternal().sigmoid());
    }

    /** The short convolution {@code name} of x [B, H, T, D], given the 3 inputs before it [B, H, 3, D]. */
    private NDArray conv(NDArray x, NDArray before, String name) {
        return ShortConv.apply(x, before, p(name + ".weight", x).expandDims(0),
                p(name + ".bias", x).reshape(1, heads, 1, headDim));
    }

    /** dt [B, H, T] = softplus(hidden W_dt + dt_bias). */
    private NDArray dt(NDArray hidden) {
        NDArray pre = hidden.matMul(p("dt_proj.weight", hidden)).add(p("dt_bias", hidden)); // [B, T, H]
        NDArray softplus = pre.maximum(Scalars.of(0f)).add(pre.abs().neg().exp().add(1f).log());
        return softplus.transpose(0, 2, 1); // [B, H, T]
    }

    private NDArray finish(NDArray y, NDArray x, NDArray hidden) {
        NDArray withSkip = y.add(x.mul(p("D", x).reshape(1, heads, 1, 1)));
        Shape hs = hidden.getShape();
        NDArray z = hidden.matMul(p("z_proj.weight", hidden)) // [B, T, H*D]
                .reshape(hs.get(0), hs.get(1), heads, headDim).transpose(0, 2, 1, 3); // [B, H, T, D]
        NDArray gated = withSkip.mul(silu(z));
        NDArray ms = gated.square().mean(new int[] {-1}, true);
        return gated.div(ms.add(EPS).sqrt()).mul(p("norm.weight", gated).reshape(1, heads, 1, headDim));
    }

    private static void require(AttentionInput in) {
        if (in.hidden() == null || in.qRaw() == null || in.kRaw() == null) {
            throw new IllegalArgumentException("mamba2 needs the layer's normed hidden state and q, k before RoPE");
        }
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        require(in);
        Shape s = in.v().getShape();
        NDArray zeros = scope.zeros(new Shape(s.get(0), s.get(1), WIDTH - 1, s.get(3)));
        NDArray x = conv(in.v(), zeros, "conv_x");
        NDArray b = conv(in.kRaw(), zeros, "conv_b");
        NDArray c = conv(in.qRaw(), zeros, "conv_c");
        NDArray dt = dt(in.hidden()); // [B, H, T]
        NDArray a = p("A_log", dt).exp().neg().reshape(1, heads, 1); // [1, H, 1]
        NDList r = ScalarDecay.chunked(scope, c, b, x.mul(dt.expandDims(-1)), dt.mul(a), 1f, null,
                settings.chunkSize());
        Mamba2State st = null;
        if (withState) {
            st = new Mamba2State(scope.getDevice());
            st.s = st.own(r.get(1).duplicate());
            long t = s.get(2);
            for (int i = 0; i < 3; i++) {
                NDArray src = i == 0 ? in.v() : i == 1 ? in.kRaw() : in.qRaw();
                NDArray window = zeros.concat(src, 2); // [B, H, T + 3, D]
                st.windows[i] = st.own(window.get(":, :, " + t + ":" + (t + WIDTH - 1)).duplicate());
            }
        }
        return new Output(finish(r.get(0), x, in.hidden()), st);
    }

    @Override
    public Mamba2State newState() {
        return new Mamba2State(device);
    }

    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        require(in);
        Mamba2State st = (Mamba2State) state;
        Shape s = in.v().getShape();
        if (st.s == null) {
            st.s = st.own(scope.zeros(new Shape(s.get(0), s.get(1), s.get(3), s.get(3))));
            for (int i = 0; i < 3; i++) {
                st.windows[i] = st.own(scope.zeros(new Shape(s.get(0), s.get(1), WIDTH - 1, s.get(3))));
            }
        }
        NDArray[] src = {in.v(), in.kRaw(), in.qRaw()};
        NDArray[] conv = new NDArray[3];
        for (int i = 0; i < 3; i++) {
            NDArray before = st.windows[i].duplicate();
            before.attach(scope);
            conv[i] = conv(src[i], before, CONVS[i]);
            NDArray next = before.concat(src[i], 2).get(":, :, 1:").duplicate(); // the last 3 inputs
            st.windows[i] = st.swap(st.windows[i], next);
        }
        NDArray dt = dt(in.hidden()); // [B, H, 1]
        NDArray a = p("A_log", dt).exp().neg().reshape(1, heads, 1);
        NDArray sIn = st.s.duplicate();
        sIn.attach(scope);
        NDList r = ScalarDecay.step(conv[2], conv[1], conv[0].mul(dt.expandDims(-1)), dt.mul(a), 1f, sIn);
        st.s = st.swap(st.s, r.get(1).duplicate());
        return finish(r.get(0), conv[0], in.hidden());
    }

    /**
     * Decoding state of the convolution-fronted recurrences (Mamba-2, Gated DeltaNet): S [B, H, D, D] and the last 3
     * inputs of each of the three short convolutions [B, H, 3, D].
     */
    public static final class Mamba2State extends OwnedState {
        NDArray s;
        final NDArray[] windows = new NDArray[3];

        Mamba2State(ai.djl.Device device) {
            super(device);
        }

        public NDArray state() {
            return s;
        }

        @Override
        public long bytes() {
            return bytesOf(s) + bytesOf(windows);
        }
    }
}
