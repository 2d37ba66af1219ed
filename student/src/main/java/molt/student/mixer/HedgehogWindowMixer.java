package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import molt.teacher.nd.Scalars;

/**
 * {@code hedgehog_window}, LoLCATs' default: softmax attention over a sliding window plus Hedgehog linear attention
 * over everything before it, sharing one normalizer. For query t the window holds the w most recent tokens
 * t-w+1..t and every earlier token goes to the linear term:
 *
 * <pre>
 *   y_t = ( g_h * sum_{s in win} exp(q_t.k_s/sqrt(D) - m_t) v_s + sum_{s <= t-w} phi_q(q_t).phi_k(k_s) v_s )
 *       / ( g_h * sum_{s in win} exp(q_t.k_s/sqrt(D) - m_t)     + sum_{s <= t-w} phi_q(q_t).phi_k(k_s) )
 * </pre>
 *
 * with m_t the largest window score and g_h = sigmoid(f_h), f_h a learned per-head scalar started at -2.197
 * (g = 0.1). Training and decoding use exactly this window (not LoLCATs' 64-127-token block window).
 *
 * <p>Chunked form (chunk C >= w): the window of every query in chunk c lies in chunks c-1 and c, so each chunk
 * builds a [C, 2C] score block against the previous and current keys; window and before-window masks come from
 * index comparisons and the window mask is applied (as -1e30) before the row max and the exponential, so nothing
 * overflows. The linear state carries every token before chunk c-1. The recurrent form keeps the last w keys and
 * values plus S, z of the tokens that left the window.
 *
 * <p>Shapes: q, k, v [B, H, T, D]; phi [B, H, T, 2F]; S [B, H, 2F, D]; z [B, H, 2F, 1]; f [H].
 */
public final class HedgehogWindowMixer implements Mixer {
    public static final String NAME = "hedgehog_window";
    private static final float MASKED = -1e30f;

    private final MixerSettings settings;
    private final NDArray wq;
    private final NDArray wk;
    private final NDArray factor;

    public HedgehogWindowMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        if (settings.chunkSize() < settings.window()) {
            throw new IllegalArgumentException("hedgehog_window needs chunk_size >= window, found chunk_size "
                    + settings.chunkSize() + " and window " + settings.window());
        }
        this.settings = settings;
        this.wq = HedgehogFeatureMap.init(m, heads, headDim, settings.featureDim());
        this.wk = HedgehogFeatureMap.init(m, heads, headDim, settings.featureDim());
        float[] f = new float[heads];
        java.util.Arrays.fill(f, (float) settings.windowFactorInit());
        this.factor = molt.teacher.nd.NativeArrays.floats(m, f, new Shape(heads));
        this.factor.setRequiresGradient(true);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, NDArray> parameters() {
        Map<String, NDArray> p = new LinkedHashMap<>();
        p.put("feature_map_q.weight", wq);
        p.put("feature_map_k.weight", wk);
        p.put("window_factor", factor);
        return p;
    }

    /** sigmoid(f) as [1, H, 1, 1], owned by {@code owner}'s manager. */
    private NDArray gate(NDArray owner) {
        NDArray g = factor.getNDArrayInternal().sigmoid(); // [H], in the parameter's manager until attached
        g.attach(owner.getManager());
        return g.reshape(1, factor.getShape().get(0), 1, 1); // [1, H, 1, 1]
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDArray q = in.q();
        NDArray k = in.k();
        NDArray v = in.v();
        NDArray fq = HedgehogFeatureMap.apply(q, wq); // [B, H, T, 2F]
        NDArray fk = HedgehogFeatureMap.apply(k, wk); // [B, H, T, 2F]
        Shape s = v.getShape();
        long b = s.get(0);
        long h = s.get(1);
        long t = s.get(2);
        long d = s.get(3);
        long f2 = fq.getShape().get(3);
        int w = settings.window();
        int c = settings.chunkSize();
        float scale = (float) (1.0 / Math.sqrt(d));
        NDArray g = gate(q);
        NDArray lagS = scope.zeros(new Shape(b, h, f2, d)); // tokens before the previous chunk
        NDArray lagZ = scope.zeros(new Shape(b, h, f2, 1));
        NDList outs = new NDList();
        NDList qs = Masks.chunks(q, c);
        NDList fqs = Masks.chunks(fq, c);
        NDList ks = Masks.chunks(k, c);
        NDList fks = Masks.chunks(fk, c);
        NDList vs = Masks.chunks(v, c);
        long lastP0 = 0;
        NDArray lastLagS = lagS;
        NDArray lastLagZ = lagZ;
        for (int ci = 0; ci < qs.size(); ci++) {
            long c0 = (long) ci * c;
            long c1 = Math.min(t, c0 + c);
            long p0 = Math.max(0, c0 - c);
            long n = c1 - c0;
            long m = c1 - p0;
            NDArray qc = qs.get(ci); // [B, H, n, D]
            NDArray fqc = fqs.get(ci); // [B, H, n, 2F]
            // The block: previous chunk (if any) then the current one.
            NDArray kb = ci == 0 ? ks.get(0) : ks.get(ci - 1).concat(ks.get(ci), 2); // [B, H, m, D]
            NDArray vb = ci == 0 ? vs.get(0) : vs.get(ci - 1).concat(vs.get(ci), 2); // [B, H, m, D]
            NDArray fkb = ci == 0 ? fks.get(0) : fks.get(ci - 1).concat(fks.get(ci), 2); // [B, H, m, 2F]
            NDArray win = Masks.window(scope, c0, n, p0, m, w); // [n, m]
            NDArray before = Masks.beforeWindow(scope, c0, n, p0, m, w); // [n, m]
            NDArray scores = qc.matMul(kb.transpose(0, 1, 3, 2)).mul(Scalars.of(scale)); // [B, H, n, m]
            NDArray masked = scores.add(win.sub(1).mul(Scalars.of(-MASKED))); // outside the window: -1e30, before any exp
            NDArray rowMax = masked.max(new int[] {-1}, true); // [B, H, n, 1]; m_t is part of the function
            NDArray e = masked.sub(rowMax).exp().mul(win).mul(g); // [B, H, n, m]
            NDArray lin = fqc.matMul(fkb.transpose(0, 1, 3, 2)).mul(before); // [B, H, n, m]
            NDArray a = e.add(lin);
            NDArray num = a.matMul(vb).add(fqc.matMul(lagS)); // [B, H, n, D]
            NDArray den = a.sum(new int[] {-1}, true).add(fqc.matMul(lagZ)); // [B, H, n, 1]
            outs.add(num.div(den));
            lastP0 = p0;
            lastLagS = lagS;
            lastLagZ = lagZ;
            if (ci > 0) {
                // The previous chunk [p0, c0) moves behind the next chunk's block: fold it into the lag state.
                NDArray kT = fks.get(ci - 1).transpose(0, 1, 3, 2); // [B, H, 2F, C]
                lagS = lagS.add(kT.matMul(vs.get(ci - 1)));
                lagZ = lagZ.add(kT.sum(new int[] {-1}, true));
            }
        }
        NDArray out = outs.size() == 1 ? outs.get(0) : NDArrays.concat(outs, 2);
        HedgehogState st = null;
        if (withState) {
            // Linear state over tokens [0, T-w): the lag state of the last chunk plus its block's tokens before T-w.
            NDArray fs = lastLagS;
            NDArray fz = lastLagZ;
            long linEnd = t - w;
            if (linEnd > lastP0) {
                String r = ":, :, " + lastP0 + ":" + linEnd;
                NDArray kT = fk.get(r).transpose(0, 1, 3, 2); // [B, H, 2F, n]
                fs = fs.add(kT.matMul(v.get(r)));
                fz = fz.add(kT.sum(new int[] {-1}, true));
            }
            long w0 = Math.max(0, t - w);
            st = new HedgehogState(scope.getDevice());
            st.s = st.own(fs.duplicate());
            st.z = st.own(fz.duplicate());
            st.bufK = st.own(k.get(":, :, " + w0 + ":" + t).duplicate());
            st.bufV = st.own(v.get(":, :, " + w0 + ":" + t).duplicate());
        }
        return new Output(out, st);
    }

    @Override
    public HedgehogState newState() {
        return new HedgehogState(wq.getDevice());
    }

    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        HedgehogState st = (HedgehogState) state;
        NDArray q = in.q(); // [B, H, 1, D]
        long b = q.getShape().get(0);
        long h = q.getShape().get(1);
        long d = q.getShape().get(3);
        long f2 = 2L * settings.featureDim();
        if (st.s == null) {
            st.s = st.own(scope.zeros(new Shape(b, h, f2, d)));
            st.z = st.own(scope.zeros(new Shape(b, h, f2, 1)));
        }
        st.bufK = st.swap(st.bufK, st.bufK == null ? in.k().duplicate() : st.bufK.concat(in.k(), 2));
        st.bufV = st.swap(st.bufV, st.bufV == null ? in.v().duplicate() : st.bufV.concat(in.v(), 2));
        long n = st.bufK.getShape().get(2);
        if (n > settings.window()) {
            // The oldest token leaves the window: its phi(k) v^T joins the linear state.
            NDArray oldK = st.bufK.get(scope, new NDIndex(":, :, 0:1")); // [B, H, 1, D]
            NDArray oldV = st.bufV.get(scope, new NDIndex(":, :, 0:1"));
            NDArray kT = HedgehogFeatureMap.apply(oldK, wk).transpose(0, 1, 3, 2); // [B, H, 2F, 1]
            st.s = st.swap(st.s, st.s.add(kT.matMul(oldV)));
            st.z = st.swap(st.z, st.z.add(kT));
            st.bufK = st.swap(st.bufK, st.bufK.get(scope, new NDIndex(":, :, 1:")).duplicate());
            st.bufV = st.swap(st.bufV, st.bufV.get(scope, new NDIndex(":, :, 1:")).duplicate());
        }
        float scale = (float) (1.0 / Math.sqrt(d));
        NDArray keysT = st.bufK.transpose(0, 1, 3, 2); // [B, H, D, n]
        keysT.attach(scope); // a view of state-owned keys: keep it out of the state's manager
        NDArray scores = q.matMul(keysT).mul(Scalars.of(scale)); // [B, H, 1, n]
        NDArray e = scores.sub(scores.max(new int[] {-1}, true)).exp().mul(gate(q)); // [B, H, 1, n]
        NDArray fq = HedgehogFeatureMap.apply(q, wq); // [B, H, 1, 2F]
        NDArray num = e.matMul(st.bufV).add(fq.matMul(st.s)); // [B, H, 1, D]
        NDArray den = e.sum(new int[] {-1}, true).add(fq.matMul(st.z)); // [B, H, 1, 1]
        return num.div(den);
    }
}
