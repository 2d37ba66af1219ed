package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import molt.teacher.nd.Ops;
import molt.teacher.nd.Scalars;

/**
 * The scalar-decay linear recurrence shared by retention, gated retention and Mamba-2 (flash-linear-attention's
 * convention): S_t = exp(g_t) S_{t-1} + k_t v_t^T, o_t = scale * q_t^T S_t, with log-decays g_t <= 0 per head and
 * step, state S [B, H, K, V] in fp32.
 *
 * <p>Chunked form (chunk C): G = cumsum(g) inside the chunk; L[i, j] = exp(G_i - G_j) for i >= j and 0 above the
 * diagonal, with the upper triangle masked BEFORE the exponential (exp of G_i - G_j for i < j overflows);
 * O_c = scale ((Q_c K_c^T) * L) V_c + scale (Q_c * exp(G)) S_in; S_out = exp(G_last) S_in + (K_c * exp(G_last - G))^T V_c.
 *
 * <p>Shapes: q, k [B, H, T, K]; v [B, H, T, V]; g [B, H, T]; S [B, H, K, V].
 */
public final class ScalarDecay {
    private ScalarDecay() {
    }

    /** Output [B, H, T, V] and final state [B, H, K, V], from {@code initial} (null = zeros). */
    public static NDList chunked(NDManager scope, NDArray q, NDArray k, NDArray v, NDArray g, float scale,
                                 NDArray initial, int chunk) {
        return ChunkScan.run(scope, initial, chunk,
            (x, s) -> chunk(scope, x.get(0), x.get(1), x.get(2), x.get(3), scale, s),
                q, k, v, g.expandDims(-1)); // g as [B, H, T, 1]
    }

    /** One chunk: q, k [B, H, n, K], v [B, H, n, V], g [B, H, n, 1], S_in [B, H, K, V] -> output and S_out. */
    private static NDList chunk(NDManager scope, NDArray qc, NDArray kc, NDArray vc, NDArray gc, float scale,
                                NDArray state) {
        long n = qc.getShape().get(2);
        NDArray cum = gc.cumSum(2); // [B, H, n, 1]: G
        NDArray rows = cum; // G_i as a column
        NDArray cols = cum.transpose(0, 1, 3, 2); // [B, H, 1, n]: G_j as a row
        NDArray causal = Masks.causal(scope, 0, n, 0, n); // [n, n]
        NDArray decay = Masks.expWhere(rows.sub(cols), causal); // [B, H, n, n]: L, 0 above the diagonal
        NDArray scores = qc.matMul(kc.transpose(0, 1, 3, 2)).mul(decay); // [B, H, n, n]
        NDArray intra = scores.matMul(vc); // [B, H, n, V]
        NDArray inter = qc.mul(cum.exp()).matMul(state); // [B, H, n, V]
        NDArray out = intra.add(inter).mul(Scalars.of(scale));
        NDArray last = Ops.last(cum, 2); // [B, H, 1, 1]: G_last
        NDArray kDecayed = kc.mul(last.sub(cum).exp()); // [B, H, n, K]
        return new NDList(out, state.mul(last.exp()).add(kDecayed.transpose(0, 1, 3, 2).matMul(vc))); // [B, H, K, V]
    }

    /** One step: q, k [B, H, 1, K], v [B, H, 1, V], g [B, H, 1]; returns output [B, H, 1, V] and the new state. */
    public static NDList step(NDArray q, NDArray k, NDArray v, NDArray g, float scale, NDArray state) {
        NDArray decay = g.expandDims(-1).exp(); // [B, H, 1, 1]
        NDArray kv = k.transpose(0, 1, 3, 2).matMul(v); // [B, H, K, V]
        NDArray next = kv.add(decay.mul(state)); // per-call arrays first: the result stays out of the state's manager
        NDArray out = q.matMul(next).mul(Scalars.of(scale)); // [B, H, 1, V]
        return new NDList(out, next);
    }
}
