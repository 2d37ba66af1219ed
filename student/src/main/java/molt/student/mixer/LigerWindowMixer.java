package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import java.util.Map;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import molt.teacher.nd.Scalars;

/**
 * {@code gla_liger_window}: Liger's hybrid output, 0.5 x sliding-window softmax attention (the w most recent tokens,
 * its own normalizer, scale 1/sqrt(D)) + 0.5 x {@code gla_liger}. No new parameters.
 *
 * <p>The window term's chunked form builds, per chunk (C >= w), a [C, 2C] score block against the previous and
 * current chunk with the window mask applied before the softmax; decoding keeps the last w keys and values.
 *
 * <p>Shapes: q, k, v [B, H, T, D]; output [B, H, T, D].
 */
public final class LigerWindowMixer implements Mixer {
    public static final String NAME = "gla_liger_window";
    private static final float MASKED = -1e30f;

    private final GlaMixer gla;
    private final MixerSettings settings;
    private final ai.djl.Device device;

    public LigerWindowMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        if (settings.chunkSize() < settings.window()) {
            throw new IllegalArgumentException("gla_liger_window needs chunk_size >= window, found chunk_size "
                    + settings.chunkSize() + " and window " + settings.window());
        }
        this.gla = GlaMixer.liger(m, heads, headDim, settings);
        this.settings = settings;
        this.device = m.getDevice();
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, NDArray> parameters() {
        return gla.parameters();
    }

    /** Sliding-window softmax attention, chunked: [B, H, T, D]. */
    private NDArray window(NDManager scope, NDArray q, NDArray k, NDArray v) {
        long t = q.getShape().get(2);
        int c = settings.chunkSize();
        int w = settings.window();
        float scale = (float) (1.0 / Math.sqrt(q.getShape().get(3)));
        NDList qs = Masks.chunks(q, c);
        NDList ks = Masks.chunks(k, c);
        NDList vs = Masks.chunks(v, c);
        NDList outs = new NDList();
        for (int ci = 0; ci < qs.size(); ci++) {
            long c0 = (long) ci * c;
            long n = Math.min(t, c0 + c) - c0;
            long p0 = Math.max(0, c0 - c);
            NDArray kb = ci == 0 ? ks.get(0) : ks.get(ci - 1).concat(ks.get(ci), 2); // [B, H, m, D]
            NDArray vb = ci == 0 ? vs.get(0) : vs.get(ci - 1).concat(vs.get(ci), 2);
            NDArray win = Masks.window(scope, c0, n, p0, kb.getShape().get(2), w); // [n, m]
            NDArray scores = qs.get(ci).matMul(kb.transpose(0, 1, 3, 2)).mul(Scalars.of(scale)); // [B, H, n, m]
            NDArray probs = scores.add(win.sub(1).mul(Scalars.of(-MASKED))).softmax(-1).mul(win);
            outs.add(probs.matMul(vb)); // [B, H, n, D]
        }
        return outs.size() == 1 ? outs.get(0) : NDArrays.concat(outs, 2);
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        Output g = gla.forward(scope, in, withState);
        NDArray out = g.out().add(window(scope, in.q(), in.k(), in.v())).mul(Scalars.of(0.5f));
        LigerState st = null;
        if (withState) {
            st = new LigerState((RetentionMixer.RetentionState) g.state(), scope.getDevice());
            long t = in.q().getShape().get(2);
            long w0 = Math.max(0, t - settings.window());
            st.bufK = st.own(in.k().get(":, :, " + w0 + ":" + t).duplicate());
            st.bufV = st.own(in.v().get(":, :, " + w0 + ":" + t).duplicate());
        }
        return new Output(out, st);
    }

    @Override
    public AttentionState newState() {
        return new LigerState((RetentionMixer.RetentionState) gla.newState(), device);
    }

    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        LigerState st = (LigerState) state;
        NDArray g = gla.step(scope, st.linear, in);
        st.bufK = st.swap(st.bufK, st.bufK == null ? in.k().duplicate() : st.bufK.concat(in.k(), 2));
        st.bufV = st.swap(st.bufV, st.bufV == null ? in.v().duplicate() : st.bufV.concat(in.v(), 2));
        if (st.bufK.getShape().get(2) > settings.window()) {
            st.bufK = st.swap(st.bufK, st.bufK.get(scope, new NDIndex(":, :, 1:")).duplicate());
            st.bufV = st.swap(st.bufV, st.bufV.get(scope, new NDIndex(":, :, 1:")).duplicate());
        }
        NDArray keysT = st.bufK.transpose(0, 1, 3, 2); // [B, H, D, n]
        keysT.attach(scope);
        float scale = (float) (1.0 / Math.sqrt(in.q().getShape().get(3)));
        NDArray probs = in.q().matMul(keysT).mul(Scalars.of(scale)).softmax(-1); // [B, H, 1, n]
        return g.add(probs.matMul(st.bufV)).mul(Scalars.of(0.5f));
    }

    /** GLA's state plus the last w keys and values. */
    public static final class LigerState extends OwnedState {
        final RetentionMixer.RetentionState linear;
        NDArray bufK;
        NDArray bufV;

        LigerState(RetentionMixer.RetentionState linear, ai.djl.Device device) {
            super(device);
            this.linear = linear;
        }

        @Override
        public long bytes() {
            return linear.bytes() + bytesOf(bufK, bufV);
        }

        @Override
        public void close() {
            linear.close();
            super.close();
        }
    }
}
