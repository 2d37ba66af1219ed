package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import molt.teacher.nd.Ops;
import molt.teacher.nd.Scalars;

/**
 * The gated delta rule (Gated DeltaNet, Yang et al. 2025): S = exp(g_t) S; u_t = beta_t (v_t - S^T k_t);
 * S = S + k_t u_t^T; o_t = scale * S^T q_t. State S [B, H, K, V] in fp32.
 *
 * <p>Chunked form through the UT transform: inside a chunk with cumulative log-decay G and Gamma_i = exp(G_i),
 * the updates satisfy (I + A) U = beta (V - Gamma K S_in) with A[i, j] = beta_i exp(G_i - G_j) k_i.k_j for j < i.
 * So U = U0 - W S_in with U0 = (I + A)^-1 (beta V) and W = (I + A)^-1 (beta Gamma K), which depend only on the
 * chunk's own inputs: they are computed for all chunks at once, and only U, O and S_out run chunk by chunk:
 * O = scale ((Q * Gamma) S_in + ((Q K^T) * L) U) with L[i, j] = exp(G_i - G_j) for j <= i, and
 * S_out = Gamma_last S_in + (K * exp(G_last - G))^T U. Every exponent is masked to <= 0 before exp.
 *
 * <p>(I + A)^-1 comes from {@link #unitLowerInverse}, by doubling the diagonal blocks whose inverses are known; each
 * intermediate is a block of the exact inverse or a product of such a block with a block of A. The product form
 * (I - A)(I + A^2)(I + A^4)... is exact in exact arithmetic but not in fp32: with nearly parallel keys, beta away from
 * 0 and little decay, A is close to beta times the all-ones strictly lower matrix, whose powers hold binomial
 * coefficients (up to C(63, 31) ~ 1e18 at chunk 64) that must cancel to an inverse with entries at most 1. Measured
 * on Gated DeltaNet's attention transfer (quickstart, lr 1e-2): intermediates of 4e14 and errors of 7e7 in the
 * inverse, and a NaN loss at step 23.
 *
 * <p>Shapes: q, k [B, H, T, K]; v [B, H, T, V]; beta, g [B, H, T]; S [B, H, K, V]. T need not be a multiple of the
 * chunk: the inputs are padded with identity steps (k = v = 0, beta = 0, g = 0), which leave the state unchanged.
 */
public final class DeltaRule {
    private DeltaRule() {
    }

    /** exp(G_i - G_j) where {@code mask} [n, n] is 1 and 0 elsewhere; G [B, H, N, n, 1]. */
    private static NDArray ratios(NDArray cum, NDArray mask) {
        NDArray diff = cum.sub(cum.transpose(0, 1, 2, 4, 3)); // [B, H, N, n, n]
        return Masks.expWhere(diff, mask);
    }

    /**
     * 1 where rows i and columns j fall into the same block of {@code 2 * size} but not into the same block of
     * {@code size} (blocks along the diagonal, starting at 0): [n, n]. Below the diagonal these are the entries that
     * join two neighbouring blocks of {@code size} into one of {@code 2 * size}.
     */
    static NDArray joining(NDManager scope, int n, int size) {
        float[] m = new float[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                m[i * n + j] = i / (2 * size) == j / (2 * size) && i / size != j / size ? 1f : 0f;
            }
        }
        return scope.create(m, new Shape(n, n));
    }

    /**
     * (I + A)^-1 for strictly lower triangular A [..., n, n], by recursive doubling: with X the inverse of the block
     * diagonal part of (I + A) with blocks of size s (X = I for s = 1) and J the entries of A that join neighbouring
     * blocks into blocks of 2s, the inverse with blocks of 2s is X - X J X (exact: J X J = 0). log2(n) levels of two
     * batched matrix products; every intermediate stays as bounded as the inverse itself.
     */
    static NDArray unitLowerInverse(NDManager scope, NDArray a) {
        int n = (int) a.getShape().getLastDimension();
        NDArray inv = scope.eye(n).sub(a.mul(joining(scope, n, 1))); // [..., n, n]: blocks of 2 inverted
        for (int size = 2; size < n; size *= 2) {
            NDArray join = a.mul(joining(scope, n, size)); // [..., n, n]
            inv = inv.sub(inv.matMul(join).matMul(inv));
        }
        return inv;
    }

    /** x [B, H, T, ...] followed by {@code extra} zero steps along time: [B, H, T + extra, ...]. */
    private static NDArray pad(NDManager scope, NDArray x, long extra) {
        long[] s = x.getShape().getShape().clone();
        s[2] = extra;
        return x.concat(scope.zeros(new Shape(s), x.getDataType()), 2);
    }

    /** Output [B, H, T, V] and final state [B, H, K, V], from {@code initial} (null = zeros). */
    public static NDList chunked(NDManager scope, NDArray q, NDArray k, NDArray v, NDArray beta, NDArray g,
                                 float scale, NDArray initial, int chunk) {
        Shape qs = q.getShape();
        long b = qs.get(0);
        long h = qs.get(1);
        long t = qs.get(2);
        long kd = qs.get(3);
        long vd = v.getShape().get(3);
        int n = (int) Math.min(chunk, t);
        long chunks = (t + n - 1) / n;
        long extra = chunks * n - t;
        NDArray bt = beta.expandDims(-1); // [B, H, T, 1]
        NDArray gt = g.expandDims(-1); // [B, H, T, 1]
        if (extra > 0) {
            q = pad(scope, q, extra);
            k = pad(scope, k, extra);
            v = pad(scope, v, extra);
            bt = pad(scope, bt, extra);
            gt = pad(scope, gt, extra);
        }
        NDArray q5 = q.reshape(b, h, chunks, n, kd); // [B, H, N, n, K]
        NDArray k5 = k.reshape(b, h, chunks, n, kd); // [B, H, N, n, K]
        NDArray v5 = v.reshape(b, h, chunks, n, vd); // [B, H, N, n, V]
        NDArray b5 = bt.reshape(b, h, chunks, n, 1); // [B, H, N, n, 1]
        NDArray cum = gt.reshape(b, h, chunks, n, 1).cumSum(3); // [B, H, N, n, 1]: G inside each chunk
        NDArray lower = Masks.causal(scope, 0, n, 0, n); // [n, n]: j <= i
        NDArray strict = lower.sub(scope.eye(n)); // [n, n]: j < i
        NDArray kt = k5.transpose(0, 1, 2, 4, 3); // [B, H, N, K, n]
        NDArray a = k5.matMul(kt).mul(ratios(cum, strict)).mul(b5); // [B, H, N, n, n], strictly lower
        NDArray inv = unitLowerInverse(scope, a); // [B, H, N, n, n]
        NDArray gamma = cum.exp(); // [B, H, N, n, 1]
        NDArray w = inv.matMul(k5.mul(b5.mul(gamma))); // [B, H, N, n, K]: (I + A)^-1 beta Gamma K
        NDArray u0 = inv.matMul(v5.mul(b5)); // [B, H, N, n, V]: (I + A)^-1 beta V
        NDArray scores = q5.matMul(kt).mul(ratios(cum, lower)); // [B, H, N, n, n]
        NDArray qg = q5.mul(gamma); // [B, H, N, n, K]
        NDArray last = Ops.last(cum, 3); // [B, H, N, 1, 1]
        NDArray kDecayed = k5.mul(last.sub(cum).exp()); // [B, H, N, n, K]
        NDArray lastDecay = last.exp().broadcast(b, h, chunks, n, 1); // [B, H, N, n, 1]: exp(G_last) on every row
        long tp = chunks * n;
        NDList r = ChunkScan.run(scope, initial, n,
            (x, s) -> carry(x.get(0), x.get(1), x.get(2), x.get(3), x.get(4), x.get(5), s),
                qg.reshape(b, h, tp, kd), w.reshape(b, h, tp, kd), u0.reshape(b, h, tp, vd), // [B, H, Tp, K|K|V]
                scores.reshape(b, h, tp, n), kDecayed.reshape(b, h, tp, kd), // [B, H, Tp, n], [B, H, Tp, K]
                lastDecay.reshape(b, h, tp, 1)); // [B, H, Tp, 1]
        NDArray out = r.get(0).mul(Scalars.of(scale)); // [B, H, Tp, V]
        return new NDList(extra > 0 ? Ops.slice(out, 2, 0, t) : out, r.get(1));
    }

    /**
     * The sequential part of one chunk: qg = Q Gamma, w, kd = K exp(G_last - G) [B, H, n, K], u0 [B, H, n, V],
     * scores [B, H, n, n], decay [B, H, n, 1] (exp(G_last) on every row), S_in [B, H, K, V] -> unscaled output and
     * S_out.
     */
    private static NDList carry(NDArray qg, NDArray w, NDArray u0, NDArray scores, NDArray kd, NDArray decay,
                                NDArray state) {
        NDArray u = u0.sub(w.matMul(state)); // [B, H, n, V]
        NDArray out = qg.matMul(state).add(scores.matMul(u)); // [B, H, n, V]
        NDArray kdT = kd.transpose(0, 1, 3, 2); // [B, H, K, n]
        NDArray next = state.mul(Ops.slice(decay, 2, 0, 1)).add(kdT.matMul(u)); // decay [B, H, 1, 1]
        return new NDList(out, next);
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
