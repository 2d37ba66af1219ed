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
 * <p>Chunked form, all chunks at once: the window term takes {@link SlidingWindow#blocks}' [C, 2C] block per chunk and
 * its softmax p (exactly 0 outside the window); since p's largest entry is 1 / Z_t with Z_t = sum_win exp(s - m_t),
 * the window's terms are g_h Z_t p.V and g_h Z_t. The linear term is causal linear attention over the keys and
 * values shifted w tokens later (phi(k_{s-w}), v_{s-w} at position s, zeros before w), so that query t sees exactly
 * the tokens s <= t-w: per chunk a [C, C] causal block against the shifted keys plus the state of every shifted
 * chunk before it (the sum of the earlier chunks' phi(K)^T V). The recurrent form keeps the last w keys and values
 * plus S, z of the tokens that left the window ({@link HedgehogState}).
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
        long t = s.get(2);
        SlidingWindow.Blocks b = SlidingWindow.blocks(scope, in.q(), in.k(), v, chunk, window, SlidingWindow.scale(in.q()));
        int count = b.count();
        // The window's sums from its softmax p: Z_t = sum_win exp(s - m_t) = 1 / max(p), since p's largest entry is
        // exp(m_t - m_t) / Z_t; so g Z_t p.V is the numerator's window term and g Z_t its normalizer's. (libtorch's exp
        // of the masked scores took 7 ms for one SmolLM2-sized layer, its softmax 0.5: docs/BENCHMARKS.md.)
        NDArray p = b.masked().softmax(-1); // [B, H, NC, C, 2C]: exactly 0 outside the window
        NDArray g = gate.reshape(1, s.get(1), 1, 1, 1); // [1, H, 1, 1, 1]
        NDArray winDen = g.div(p.max(new int[] {-1}, true)); // [B, H, NC, C, 1]: g_h Z_t
        NDArray winNum = p.matMul(b.values()).mul(winDen); // [B, H, NC, C, D]
        // The linear term: causal linear attention over keys and values shifted w tokens later.
        NDArray fqc = Masks.toChunks(scope, fq, count, chunk); // [B, H, NC, C, F2]
        NDArray fkc = Masks.toChunks(scope, Masks.later(scope, fk, window), count, chunk); // [B, H, NC, C, F2]
        NDArray vc = Masks.toChunks(scope, Masks.later(scope, v, window), count, chunk); // [B, H, NC, C, D]
        NDArray kT = fkc.transpose(0, 1, 2, 4, 3); // [B, H, NC, F2, C]
        NDArray kv = kT.matMul(vc); // [B, H, NC, F2, D]: each shifted chunk's phi(K)^T V
        NDArray kz = kT.sum(new int[] {-1}, true); // [B, H, NC, F2, 1]
        NDArray stateS = Masks.before(scope, kv); // [B, H, NC, F2, D]: S of every shifted chunk before c
        NDArray stateZ = Masks.before(scope, kz); // [B, H, NC, F2, 1]
        NDArray a = fqc.matMul(kT).mul(Masks.causal(scope, 0, chunk, 0, chunk)); // [B, H, NC, C, C]
        NDArray num = winNum.add(a.matMul(vc)).add(fqc.matMul(stateS)); // [B, H, NC, C, D]
        NDArray den = winDen.add(a.sum(new int[] {-1}, true)).add(fqc.matMul(stateZ)); // [B, H, NC, C, 1]
        NDArray out = Masks.fromChunks(num.div(den), t); // [B, H, T, D]
        if (!withState) {
            return new NDList(out);
        }
        // Linear state over tokens [0, T-w): every shifted chunk's increment (the shifted positions from T on are zeros).
        NDArray lastS = stateS.get(":, :, -1").add(kv.get(":, :, -1")); // [B, H, F2, D]
        NDArray lastZ = stateZ.get(":, :, -1").add(kz.get(":, :, -1")); // [B, H, F2, 1]
        return new NDList(out, lastS, lastZ);
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
