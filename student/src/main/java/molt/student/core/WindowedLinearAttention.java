package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
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
 * <p>Chunked form: {@link SlidingWindow#blocks}' [C, 2C] block per chunk, all chunks at once, whose window scores are
 * exponentiated after the row max of the masked scores, and whose keys before the window enter the linear term (mask
 * from index comparisons); chunk c's linear state carries every token before chunk c-1 (S_c = S_{c-1} + phi(K_{c-2})^T
 * V_{c-2}, a short loop of additions). The recurrent form keeps the last w keys and values plus S, z of the tokens
 * that left the window ({@link HedgehogState}).
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
        long f2 = fq.getShape().get(3);
        SlidingWindow.Blocks b = SlidingWindow.blocks(scope, in.q(), in.k(), v, chunk, window, SlidingWindow.scale(in.q()));
        int count = b.count();
        NDArray fqc = Masks.toChunks(scope, fq, count, chunk); // [B, H, NC, C, F2]
        NDArray fkc = Masks.toChunks(scope, fk, count, chunk); // [B, H, NC, C, F2]
        NDArray fkb = Masks.withPreviousChunk(scope, fkc); // [B, H, NC, 2C, F2]
        NDArray before = Masks.beforeWindow(b.positions(), window); // [NC, C, 2C]
        NDArray rowMax = b.masked().max(new int[] {-1}, true); // [B, H, NC, C, 1]; m_t is part of the function
        NDArray g = gate.reshape(1, s.get(1), 1, 1, 1); // [1, H, 1, 1, 1]
        NDArray e = b.masked().sub(rowMax).exp().mul(b.inside()).mul(g); // [B, H, NC, C, 2C]
        NDArray lin = fqc.matMul(fkb.transpose(0, 1, 2, 4, 3)).mul(before); // [B, H, NC, C, 2C]
        // Each chunk's tokens as a state increment, then chunk c's lag state: every chunk before c - 1.
        NDArray kT = fkc.transpose(0, 1, 2, 4, 3); // [B, H, NC, F2, C]
        NDList kv = kT.matMul(Masks.toChunks(scope, v, count, chunk)).split(count, 2); // NC x [B, H, 1, F2, D]
        NDList kz = kT.sum(new int[] {-1}, true).split(count, 2); // NC x [B, H, 1, F2, 1]
        NDArray[] lagS = new NDArray[count];
        NDArray[] lagZ = new NDArray[count];
        for (int c = 0; c < count; c++) {
            lagS[c] = c < 2 ? scope.zeros(new Shape(s.get(0), s.get(1), 1, f2, s.get(3))) : lagS[c - 1].add(kv.get(c - 2));
            lagZ[c] = c < 2 ? scope.zeros(new Shape(s.get(0), s.get(1), 1, f2, 1)) : lagZ[c - 1].add(kz.get(c - 2));
        }
        NDArray states = count == 1 ? lagS[0] : NDArrays.concat(new NDList(lagS), 2); // [B, H, NC, F2, D]
        NDArray norms = count == 1 ? lagZ[0] : NDArrays.concat(new NDList(lagZ), 2); // [B, H, NC, F2, 1]
        NDArray out = Masks.fromChunks(LinearAttention.read(e.add(lin), b.values(), fqc, states, norms), t); // [B, H, T, D]
        if (!withState) {
            return new NDList(out);
        }
        // Linear state over tokens [0, T-w): the last chunk's lag state plus its block's tokens before T-w.
        NDArray lastS = lagS[count - 1].squeeze(2); // [B, H, F2, D]
        NDArray lastZ = lagZ[count - 1].squeeze(2); // [B, H, F2, 1]
        long lastP0 = Math.max(0, (long) (count - 2) * chunk);
        long linEnd = t - window;
        if (linEnd > lastP0) {
            String r = ":, :, " + lastP0 + ":" + linEnd;
            NDArray[] folded = LinearAttention.fold(lastS, lastZ, fk.get(r).transpose(0, 1, 3, 2), v.get(r)); // [B, H, F2, n]
            lastS = folded[0];
            lastZ = folded[1];
        }
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
