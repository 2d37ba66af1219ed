package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.function.UnaryOperator;
import molt.teacher.model.AttentionInput;

/**
 * LoLCATs' hybrid (hedgehog_window): softmax attention over a sliding window plus normalized linear attention over
 * everything before it, sharing one normalizer. For query t the window holds the w most recent tokens t-w+1..t and
 * every earlier token goes to the linear term:
 *
 * <pre>
 *   y_t = ( g_h * sum_{s in win} exp(q_t.k_s/sqrt(D) - m_t) v_s + sum_{s <= t-w} phi_q(q_t).phi_k(k_s) v_s )
 *       / ( g_h * sum_{s in win} exp(q_t.k_s/sqrt(D) - m_t)     + sum_{s <= t-w} phi_q(q_t).phi_k(k_s) )
 * </pre>
 *
 * with m_t the largest window score and g_h the window's per-head weight.
 *
 * <p>Chunked form: {@link SlidingWindow}'s [C, 2C] block per chunk, whose window scores are exponentiated after the
 * row max of the masked scores, and whose keys before the window enter the linear term (mask from index comparisons);
 * the linear state carries every token before chunk c-1. The recurrent form keeps the last w keys and values plus
 * S, z of the tokens that left the window ({@link HedgehogState}).
 *
 * <p>Shapes: q, k, v [B, H, T, D]; phi [B, H, T, F2]; S [B, H, F2, D]; z [B, H, F2, 1]; gate [1, H, 1, 1].
 */
public final class WindowedLinearAttention {
    private WindowedLinearAttention() {
    }

    /**
     * Output [B, H, T, D] for q, k, v, their features fq = phi_q(q), fk = phi_k(k) and the window weight {@code gate};
     * with {@code withState} also S and z over the tokens before the last window (0..T-w-1).
     */
    public static NDList chunked(NDManager scope, AttentionInput in, NDArray fq, NDArray fk, NDArray gate, int chunk,
                                 int window, boolean withState) {
        NDArray v = in.v();
        Shape s = v.getShape();
        long f2 = fq.getShape().get(3);
        NDArray lagS = scope.zeros(new Shape(s.get(0), s.get(1), f2, s.get(3))); // tokens before the previous chunk
        NDArray lagZ = scope.zeros(new Shape(s.get(0), s.get(1), f2, 1));
        NDList outs = new NDList();
        NDList qs = Masks.chunks(in.q(), chunk);
        NDList fqs = Masks.chunks(fq, chunk);
        NDList ks = Masks.chunks(in.k(), chunk);
        NDList fks = Masks.chunks(fk, chunk);
        NDList vs = Masks.chunks(v, chunk);
        float scale = SlidingWindow.scale(in.q());
        long lastP0 = 0;
        NDArray[] last = {lagS, lagZ};
        for (int ci = 0; ci < qs.size(); ci++) {
            SlidingWindow.Block b = SlidingWindow.block(scope, qs, ks, vs, ci, chunk, window, scale);
            NDArray fqc = fqs.get(ci); // [B, H, n, F2]
            NDArray fkb = Masks.withPrevious(fks, ci); // [B, H, m, F2]
            NDArray before = Masks.beforeWindow(scope, b.c0(), b.n(), b.p0(), b.m(), window); // [n, m]
            NDArray rowMax = b.masked().max(new int[] {-1}, true); // [B, H, n, 1]; m_t is part of the function
            NDArray e = b.masked().sub(rowMax).exp().mul(b.inside()).mul(gate); // [B, H, n, m]
            NDArray lin = fqc.matMul(fkb.transpose(0, 1, 3, 2)).mul(before); // [B, H, n, m]
            outs.add(LinearAttention.read(e.add(lin), b.values(), fqc, lagS, lagZ));
            lastP0 = b.p0();
            last = new NDArray[] {lagS, lagZ};
            if (ci > 0) {
                // The previous chunk [p0, c0) moves behind the next chunk's block: fold it into the lag state.
                NDArray kT = fks.get(ci - 1).transpose(0, 1, 3, 2); // [B, H, F2, C]
                NDArray[] folded = LinearAttention.fold(lagS, lagZ, kT, vs.get(ci - 1));
                lagS = folded[0];
                lagZ = folded[1];
            }
        }
        NDArray out = Masks.unchunk(outs);
        if (!withState) {
            return new NDList(out);
        }
        // Linear state over tokens [0, T-w): the lag state of the last chunk plus its block's tokens before T-w.
        long linEnd = s.get(2) - window;
        if (linEnd > lastP0) {
            String r = ":, :, " + lastP0 + ":" + linEnd;
            last = LinearAttention.fold(last[0], last[1], fk.get(r).transpose(0, 1, 3, 2), v.get(r)); // [B, H, F2, n]
        }
        return new NDList(out, last[0], last[1]);
    }

    /**
     * One token: the window takes k, v (its oldest token, once more than w, joins S and z through {@code phiK}); then
     * the shared-normalizer read for q, with fq = phi_q(q) [B, H, 1, F2]. Returns [B, H, 1, D].
     */
    public static NDArray step(NDManager scope, HedgehogState st, AttentionInput in, NDArray fq,
                               UnaryOperator<NDArray> phiK, NDArray gate, int window) {
        st.start(scope, in.q(), fq);
        st.window().push(scope, in.k(), in.v(), window,
            (oldK, oldV) -> st.add(phiK.apply(oldK).transpose(0, 1, 3, 2), oldV)); // phi(k)^T [B, H, F2, 1]
        NDArray scores = st.window().scores(scope, in.q()); // [B, H, 1, n]
        NDArray e = scores.subi(scores.max(new int[] {-1}, true)).exp().muli(gate); // [B, H, 1, n]
        return LinearAttention.readStep(e, st.window().values(scope), fq, st.linearState(), st.normalizer());
    }
}
