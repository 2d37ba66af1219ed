package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import molt.teacher.nd.Ops;

/**
 * Normalized linear attention over positive features (the Hedgehog mixers' linear term, LoLCATs):
 * y_t = phi_q(q_t)^T S_t / (phi_q(q_t)^T z_t), S_t = sum_{s<=t} phi_k(k_s) v_s^T, z_t = sum_{s<=t} phi_k(k_s),
 * with no 1/sqrt(D) scale, all in fp32.
 *
 * <p>Chunked form (chunk C): per chunk, A = (phi(Q_c) phi(K_c)^T) * causal, y = (A V_c + phi(Q_c) S) /
 * (A 1 + phi(Q_c) z), then S += phi(K_c)^T V_c and z += phi(K_c)^T 1; quadratic only inside a chunk. The feature
 * maps are positive, so no exponential of a masked score is ever taken.
 *
 * <p>Shapes: fq, fk [B, H, T, F2] (the feature maps' outputs); v [B, H, T, D]; S [B, H, F2, D]; z [B, H, F2, 1].
 */
public final class LinearAttention {
    private LinearAttention() {
    }

    /** Output [B, H, T, D], S [B, H, F2, D] and z [B, H, F2, 1] after the last token, from zeros. */
    public static NDList chunked(NDManager scope, NDArray fq, NDArray fk, NDArray v, int chunk) {
        Shape s = v.getShape();
        long t = s.get(2);
        long f2 = fq.getShape().get(3);
        NDArray state = scope.zeros(new Shape(s.get(0), s.get(1), f2, s.get(3)));
        NDArray norm = scope.zeros(new Shape(s.get(0), s.get(1), f2, 1));
        NDList outs = new NDList();
        NDList qs = Masks.chunks(fq, chunk);
        NDList ks = Masks.chunks(fk, chunk);
        NDList vs = Masks.chunks(v, chunk);
        for (int ci = 0; ci < qs.size(); ci++) {
            long c0 = (long) ci * chunk;
            long c1 = Math.min(t, c0 + chunk);
            NDArray qc = qs.get(ci); // [B, H, n, F2]
            NDArray kc = ks.get(ci); // [B, H, n, F2]
            NDArray vc = vs.get(ci); // [B, H, n, D]
            NDArray a = qc.matMul(kc.transpose(0, 1, 3, 2)) // [B, H, n, n]
                    .mul(Masks.causal(scope, c0, c1 - c0, c0, c1 - c0));
            outs.add(read(a, vc, qc, state, norm));
            NDArray[] folded = fold(state, norm, kc.transpose(0, 1, 3, 2), vc); // phi(K_c)^T [B, H, F2, n]
            state = folded[0];
            norm = folded[1];
        }
        return new NDList(Masks.unchunk(outs), state, norm);
    }

    /**
     * Adds tokens to the linear term: returns S + kT V and z + kT 1, for kT = phi(K)^T [B, H, F2, n] and
     * V [B, H, n, D].
     */
    static NDArray[] fold(NDArray s, NDArray z, NDArray kT, NDArray v) {
        return new NDArray[] {s.add(kT.matMul(v)), z.add(kT.sum(new int[] {-1}, true))};
    }

    /**
     * The shared-normalizer read (A V + phi(Q) S) / (A 1 + phi(Q) z): weights A [B, H, n, m] on values [B, H, m, D]
     * (the causal block of {@link #chunked}, or a window's exponentiated scores) beside the linear term held in S and
     * z, for fq = phi(Q) [B, H, n, F2]; returns [B, H, n, D].
     */
    static NDArray read(NDArray a, NDArray values, NDArray fq, NDArray s, NDArray z) {
        NDArray num = a.matMul(values).add(fq.matMul(s)); // [B, H, n, D]
        NDArray den = a.sum(new int[] {-1}, true).add(fq.matMul(z)); // [B, H, n, 1]
        return num.div(den);
    }

    /** One token: adds phi(k) v^T to the state, then reads it with phi(q); fq, fk [B, H, 1, F2], v [B, H, 1, D]. */
    public static NDArray step(HedgehogState st, NDArray fq, NDArray fk, NDArray v) {
        st.add(fk.transpose(0, 1, 3, 2), v); // phi(k)^T [B, H, F2, 1]
        NDArray num = Ops.matMul(fq, st.linearState()); // [B, H, 1, D]
        NDArray den = Ops.matMul(fq, st.normalizer()); // [B, H, 1, 1]
        return num.divi(den);
    }

    /**
     * {@link #read} for the recurrent forms (no backward runs through it): the same ops in the same order, sums taken
     * in place into the products.
     */
    static NDArray readStep(NDArray a, NDArray values, NDArray fq, NDArray s, NDArray z) {
        NDArray num = Ops.matMul(a, values).addi(Ops.matMul(fq, s)); // [B, H, n, D]
        NDArray den = a.sum(new int[] {-1}, true).addi(Ops.matMul(fq, z)); // [B, H, n, 1]
        return num.divi(den);
    }
}
