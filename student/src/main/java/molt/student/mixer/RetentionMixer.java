package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.student.core.ScalarDecay;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;

/**
 * {@code retention} (RetNet, Sun et al. 2023): linear attention with a fixed decay per head,
 * S_t = gamma_h S_{t-1} + k_t v_t^T, o_t = q_t^T S_t / sqrt(D), gamma_h = 1 - 2^(-5-h) for head h, followed by
 * RetNet's output normalization: an RMS norm over each head's D outputs. RetNet's parallel-form rescalings of the
 * decay and score matrices cancel under that norm, so the recurrent and chunked forms here compute the same
 * function. The decay has no parameters; attention transfer trains the norm's per-head, per-dimension gain
 * (started at 1), which sets each head's output scale to match the teacher's.
 *
 * <p>Shapes: q, k, v [B, H, T, D] (after RoPE and GQA); state S [B, H, D, D]; norm weight [H, D].
 */
public final class RetentionMixer implements Mixer {
    public static final String NAME = "retention";
    static final float EPS = 1e-6f;

    private final MixerSettings settings;
    private final NDArray normWeight;
    private final float[] logDecay;

    public RetentionMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        this.settings = settings;
        float[] w = new float[heads * headDim];
        java.util.Arrays.fill(w, 1f);
        this.normWeight = molt.teacher.nd.NativeArrays.floats(m, w, new Shape(heads, headDim));
        this.normWeight.setRequiresGradient(true);
        this.logDecay = new float[heads];
        for (int h = 0; h < heads; h++) {
            logDecay[h] = (float) Math.log(1 - Math.pow(2, -5 - h));
        }
    }

    /** log(gamma_h) per head. */
    public static double logDecay(int head) {
        return Math.log(1 - Math.pow(2, -5 - head));
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, NDArray> parameters() {
        Map<String, NDArray> p = new LinkedHashMap<>();
        p.put("output_norm.weight", normWeight);
        return p;
    }

    /** Log-decays [B, H, T], created in {@code scope}. */
    private NDArray decays(NDManager scope, long b, long t) {
        return molt.teacher.nd.NativeArrays.floats(scope, logDecay, new Shape(1, logDecay.length, 1)).broadcast(new Shape(b, logDecay.length, t));
    }

    /** Per-head RMS norm over D with the learned gain; o [B, H, T, D]. */
    private NDArray norm(NDArray o) {
        NDArray w = normWeight.expandDims(1); // [H, 1, D]
        w.attach(o.getManager());
        NDArray ms = o.square().mean(new int[] {-1}, true); // [B, H, T, 1]
        return o.div(ms.add(EPS).sqrt()).mul(w);
    }

    private float scale(NDArray q) {
        return (float) (1.0 / Math.sqrt(q.getShape().get(3)));
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        Shape s = in.q().getShape();
        NDList r = ScalarDecay.chunked(scope, in.q(), in.k(), in.v(), decays(scope, s.get(0), s.get(2)), scale(in.q()),
                null, settings.chunkSize());
        RetentionState st = null;
        if (withState) {
            st = new RetentionState(scope.getDevice());
            st.s = st.own(r.get(1).duplicate());
        }
        return new Output(norm(r.get(0)), st);
    }

    @Override
    public RetentionState newState() {
        return new RetentionState(normWeight.getDevice());
    }

    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        RetentionState st = (RetentionState) state;
        Shape s = in.q().getShape();
        if (st.s == null) {
            st.s = st.own(scope.zeros(new Shape(s.get(0), s.get(1), s.get(3), in.v().getShape().get(3))));
        }
        NDList r = ScalarDecay.step(in.q(), in.k(), in.v(), decays(scope, s.get(0), 1), scale(in.q()), st.s);
        NDArray next = r.get(1);
        next.attach(scope);
        st.s = st.swap(st.s, next.duplicate());
        return norm(r.get(0));
    }

    /** Decoding state of a single-matrix recurrence (retention, GLA): S [B, H, D, D], constant in size. */
    public static final class RetentionState extends OwnedState {
        NDArray s;

        public RetentionState(ai.djl.Device device) {
            super(device);
        }

        public NDArray state() {
            return s;
        }

        @Override
        public long bytes() {
            return bytesOf(s);
        }
    }
}
