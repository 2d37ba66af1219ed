package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;

/**
 * {@code hedgehog}: LoLCATs' linear attention with learned Hedgehog feature maps on q and k (untied, per head):
 * y_t = phi_q(q_t)^T S_t / (phi_q(q_t)^T z_t), S_t = sum_{s<=t} phi_k(k_s) v_s^T, z_t = sum_{s<=t} phi_k(k_s),
 * with no 1/sqrt(D) scale, all in fp32.
 *
 * <p>Chunked form (chunk C): per chunk, A = (phi(Q_c) phi(K_c)^T) * causal, y = (A V_c + phi(Q_c) S) /
 * (A 1 + phi(Q_c) z), then S += phi(K_c)^T V_c and z += phi(K_c)^T 1; quadratic only inside a chunk. The feature
 * maps are positive, so no exponential of a masked score is ever taken.
 *
 * <p>Shapes: q, k, v [B, H, T, D]; phi [B, H, T, 2F]; S [B, H, 2F, D]; z [B, H, 2F, 1].
 */
public final class HedgehogMixer implements Mixer {
    public static final String NAME = "hedgehog";

    private final MixerSettings settings;
    private final NDArray wq;
    private final NDArray wk;

    /** A mixer for {@code heads} heads of dim {@code headDim} at the identity init; parameters live in {@code m}. */
    public HedgehogMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        this(settings, HedgehogFeatureMap.init(m, heads, headDim, settings.featureDim()),
                HedgehogFeatureMap.init(m, heads, headDim, settings.featureDim()));
    }

    HedgehogMixer(MixerSettings settings, NDArray wq, NDArray wk) {
        this.settings = settings;
        this.wq = wq;
        this.wk = wk;
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
        return p;
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDArray fq = HedgehogFeatureMap.apply(in.q(), wq); // [B, H, T, 2F]
        NDArray fk = HedgehogFeatureMap.apply(in.k(), wk); // [B, H, T, 2F]
        NDArray v = in.v();
        Shape s = v.getShape();
        long b = s.get(0);
        long h = s.get(1);
        long t = s.get(2);
        long d = s.get(3);
        long f2 = fq.getShape().get(3);
        NDArray state = scope.zeros(new Shape(b, h, f2, d));
        NDArray norm = scope.zeros(new Shape(b, h, f2, 1));
        NDList outs = new NDList();
        int c = settings.chunkSize();
        NDList qs = Masks.chunks(fq, c);
        NDList ks = Masks.chunks(fk, c);
        NDList vs = Masks.chunks(v, c);
        for (int ci = 0; ci < qs.size(); ci++) {
            long c0 = (long) ci * c;
            long c1 = Math.min(t, c0 + c);
            NDArray qc = qs.get(ci); // [B, H, n, 2F]
            NDArray kc = ks.get(ci); // [B, H, n, 2F]
            NDArray vc = vs.get(ci); // [B, H, n, D]
            NDArray a = qc.matMul(kc.transpose(0, 1, 3, 2)) // [B, H, n, n]
                    .mul(Masks.causal(scope, c0, c1 - c0, c0, c1 - c0));
            NDArray num = a.matMul(vc).add(qc.matMul(state)); // [B, H, n, D]
            NDArray den = a.sum(new int[] {-1}, true).add(qc.matMul(norm)); // [B, H, n, 1]
            outs.add(num.div(den));
            NDArray kT = kc.transpose(0, 1, 3, 2); // [B, H, 2F, n]
            state = state.add(kT.matMul(vc));
            norm = norm.add(kT.sum(new int[] {-1}, true));
        }
        NDArray out = outs.size() == 1 ? outs.get(0) : NDArrays.concat(outs, 2);
        HedgehogState st = null;
        if (withState) {
            st = new HedgehogState(scope.getDevice());
            st.s = st.own(state.duplicate());
            st.z = st.own(norm.duplicate());
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
        NDArray fq = HedgehogFeatureMap.apply(in.q(), wq); // [B, H, 1, 2F]
        NDArray fk = HedgehogFeatureMap.apply(in.k(), wk); // [B, H, 1, 2F]
        NDArray kT = fk.transpose(0, 1, 3, 2); // [B, H, 2F, 1]
        NDArray ds = kT.matMul(in.v()); // [B, H, 2F, D]
        st.s = st.swap(st.s, st.s == null ? ds.duplicate() : st.s.add(ds));
        st.z = st.swap(st.z, st.z == null ? kT.duplicate() : st.z.add(kT));
        NDArray num = fq.matMul(st.s); // [B, H, 1, D]
        NDArray den = fq.matMul(st.z); // [B, H, 1, 1]
        return num.div(den);
    }
}
