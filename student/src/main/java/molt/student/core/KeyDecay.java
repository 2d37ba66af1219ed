package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import molt.teacher.nd.Ops;
import molt.teacher.nd.Scalars;

/**
 * The per-key-dimension decay recurrence of gated linear attention (GLA, Yang et al. 2024):
 * S_t = diag(exp(gk_t)) S_{t-1} + k_t v_t^T, o_t = scale * q_t^T S_t, with gk_t <= 0 per head, step and key
 * dimension, state S [B, H, K, V] in fp32.
 *
 * <p>Chunked form (chunk C): G = cumsum(gk) inside the chunk. The in-chunk scores
 * A[i, j] = sum_d q_i[d] k_j[d] exp(G_i[d] - G_j[d]) are formed from the pairwise differences G_i - G_j, masked above
 * the diagonal before the exponential, so every exponent is <= 0: the factored form (Q e^G)(K e^-G)^T would
 * overflow e^-G in fp32 over a long chunk. Quadratic work (C x C x K) stays inside the chunk. Across chunks:
 * O += scale (Q * e^G) S_in and S_out = e^{G_last} * S_in + (K * e^{G_last - G})^T V, all exponents <= 0.
 *
 * <p>Shapes: q, k, gk [B, H, T, K]; v [B, H, T, V]; S [B, H, K, V].
 */
public final class KeyDecay {
    private KeyDecay() {
    }

    /**
     * GLA's log-decays gk = logsigmoid(x) / 16 from gate pre-activations x: always <= 0, and the division keeps the
     * per-token decay near 1 (sigmoid(0)^(1/16) = 0.958 at x = 0).
     */
    public static NDArray logDecay(NDArray x) {
        return Activations.logSigmoid(x).div(Scalars.of(16f));
    }

    /** Output [B, H, T, V] and final state [B, H, K, V] from {@code initial} (null = zeros). */
    public static NDList chunked(NDManager scope, NDArray q, NDArray k, NDArray v, NDArray gk, float scale,
                                 NDArray initial, int chunk) {
        return ChunkScan.run(scope, initial, chunk,
            (x, s) -> chunk(scope, x.get(0), x.get(1), x.get(2), x.get(3), scale, s),
                q, k, v, gk);
    }

    /** One chunk: q, k, gk [B, H, n, K], v [B, H, n, V], S_in [B, H, K, V] -> output and S_out. */
    private static NDList chunk(NDManager scope, NDArray qc, NDArray kc, NDArray vc, NDArray gc, float scale,
                                NDArray state) {
        long n = qc.getShape().get(2);
        NDArray cum = gc.cumSum(2); // [B, H, n, K]: G
        NDArray causal = Masks.causal(scope, 0, n, 0, n); // [n, n]
        NDArray diff = cum.expandDims(3).sub(cum.expandDims(2)); // [B, H, n, n, K]: G_i - G_j
        NDArray decay = Masks.expWhere(diff, causal.expandDims(-1)); // [B, H, n, n, K]: exponents <= 0, 0 above
        NDArray scores = qc.expandDims(3).mul(kc.expandDims(2)).mul(decay) // [B, H, n, 1, K] * [B, H, 1, n, K]
                .sum(new int[] {-1}); // [B, H, n, n]
        NDArray intra = scores.matMul(vc); // [B, H, n, V]
        NDArray inter = qc.mul(cum.exp()).matMul(state); // [B, H, n, V]
        NDArray out = intra.add(inter).mul(Scalars.of(scale));
        NDArray last = Ops.last(cum, 2); // [B, H, 1, K]: G_last
        NDArray kDecayed = kc.mul(last.sub(cum).exp()); // [B, H, n, K]
        NDArray carried = last.exp().transpose(0, 1, 3, 2).mul(state); // [B, H, K, V]: diag(e^{G_last}) S_in
        return new NDList(out, carried.add(kDecayed.transpose(0, 1, 3, 2).matMul(vc))); // K^T [B, H, K, n]
    }

    /** One step: q, k, gk [B, H, 1, K], v [B, H, 1, V]; returns output [B, H, 1, V] and the new state. */
    public static NDList step(NDArray q, NDArray k, NDArray v, NDArray gk, float scale, NDArray state) {
        NDArray decay = gk.exp().transpose(0, 1, 3, 2); // [B, H, K, 1]
        NDArray kv = k.transpose(0, 1, 3, 2).matMul(v); // [B, H, K, V]
        NDArray next = kv.add(decay.mul(state));
        return new NDList(q.matMul(next).mul(Scalars.of(scale)), next);
    }
}
