package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import molt.teacher.nd.Scalars;

/**
 * The gated delta rule (Gated DeltaNet, Yang et al. 2025): S = exp(g_t) S; u_t = beta_t (v_t - S^T k_t);
 * S = S + k_t u_t^T; o_t = scale * S^T q_t. State S [B, H, K, V] in fp32.
 *
 * <p>Chunked form through the UT transform: inside a chunk with cumulative log-decay G and Gamma_i = exp(G_i),
 * the updates satisfy (I + A) U = beta (V - Gamma K S_in) with A[i, j] = beta_i exp(G_i - G_j) k_i.k_j for j < i.
 * A is strictly lower triangular, hence nilpotent, so (I + A)^-1 = (I - A)(I + A^2)(I + A^4)... : log2(C) matrix
 * products, no per-step loop. Then O = scale ((Q * Gamma) S_in + ((Q K^T) * L) U) with L[i, j] = exp(G_i - G_j) for
 * j <= i, and S_out = Gamma_last S_in + (K * exp(G_last - G))^T U. Every exponent is masked to <= 0 before exp.
 *
 * <p>Shapes: q, k [B, H, T, K]; v [B, H, T, V]; beta, g [B, H, T]; S [B, H, K, V].
 */
public final class DeltaRule {
    private DeltaRule() {
    }

    /** exp(G_i - G_j) where {@code mask} is 1 and 0 elsewhere; G [B, H, n, 1]. */
    private static NDArray ratios(NDArray cum, NDArray mask) {
        NDArray diff = cum.sub(cum.transpose(0, 1, 3, 2)); // [B, H, n, n]
        return diff.add(Masks.additive(mask)).exp().mul(mask);
    }

    /** Output [B, H, T, V] and final state [B, H, K, V], from {@code initial} (null = zeros). */
    public static NDList chunked(NDManager scope, NDArray q, NDArray k, NDArray v, NDArray beta, NDArray g,
                                 float scale, NDArray initial, int chunk) {
        return ChunkScan.run(scope, initial, chunk,
            (x, s) -> chunk(scope, x.get(0), x.get(1), x.get(2), x.get(3), x.get(4), scale, s),
                q, k, v, beta.expandDims(-1), g.expandDims(-1)); // beta, g as [B, H, T, 1]
    }

    /** One chunk: q, k [B, H, n, K], v [B, H, n, V], beta, g [B, H, n, 1], S_in [B, H, K, V] -> output and S_out. */
    private static NDList chunk(NDManager scope, NDArray qi, NDArray ki, NDArray vi, NDArray bi, NDArray gi,
                                float scale, NDArray state) {
        long n = qi.getShape().get(2);
        NDArray cum = gi.cumSum(2); // [B, H, n, 1]
        NDArray strict = Masks.causal(scope, 0, n, 0, n).sub(scope.eye((int) n)); // j < i
        NDArray lower = Masks.causal(scope, 0, n, 0, n); // j <= i
        NDArray kk = ki.matMul(ki.transpose(0, 1, 3, 2)); // [B, H, n, n]
        NDArray a = kk.mul(ratios(cum, strict)).mul(bi); // [B, H, n, n], strictly lower
        // (I + A)^-1 = (I - A)(I + A^2)(I + A^4)...
        NDArray eye = scope.eye((int) n);
        NDArray inv = eye.sub(a);
        NDArray power = a.matMul(a);
        for (long span = 2; span < n; span *= 2) {
            inv = inv.matMul(power.add(eye));
            power = power.matMul(power);
        }
        NDArray gamma = cum.exp(); // [B, H, n, 1]
        NDArray rhs = vi.mul(bi).sub(ki.mul(gamma).mul(bi).matMul(state)); // beta (V - Gamma K S_in)
        NDArray u = inv.matMul(rhs); // [B, H, n, V]
        NDArray scores = qi.matMul(ki.transpose(0, 1, 3, 2)).mul(ratios(cum, lower)); // [B, H, n, n]
        NDArray out = qi.mul(gamma).matMul(state).add(scores.matMul(u)).mul(Scalars.of(scale));
        NDArray last = cum.get(":, :, -1:, :"); // [B, H, 1, 1]
        NDArray kDecayed = ki.mul(last.sub(cum).exp()); // [B, H, n, K]
        return new NDList(out, state.mul(last.exp()).add(kDecayed.transpose(0, 1, 3, 2).matMul(u))); // K^T [B, H, K, n]
    }

    /**
     * One step: q, k [B, H, 1, K], v [B, H, 1, V], beta, g [B, H, 1]; returns output [B, H, 1, V] and the new
     * state.
     */
    public static NDList step(NDArray q, NDArray k, NDArray v, NDArray beta, NDArray g, float scale, NDArray state) {
        NDArray decayed = g.expandDims(-1).exp().mul(state); // [B, H, K, V]
        NDArray predicted = k.matMul(decayed); // [B, H, 1, V]: (S^T k)^T
        NDArray u = v.sub(predicted).mul(beta.expandDims(-1)); // [B, H, 1, V]
        NDArray next = decayed.add(k.transpose(0, 1, 3, 2).matMul(u)); // k [B, H, K, 1] times u [B, H, 1, V]
        return new NDList(q.matMul(next).mul(Scalars.of(scale)), next);
    }
}
