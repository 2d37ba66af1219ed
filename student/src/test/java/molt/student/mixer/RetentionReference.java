package molt.student.mixer;

import java.util.Arrays;
import molt.student.core.Numerics;

/**
 * Retention written from its recurrence as a token loop in double precision: S_t = gamma_h S_{t-1} + k_t v_t^T,
 * o_t = q_t^T S_t / sqrt(D), then an RMS norm over D with gain w[h]. Flat row-major arrays: q, k, v [B, H, T, D],
 * w [H, D]; returns the output [B, H, T, D] and the final state [B, H, D, D].
 */
final class RetentionReference {
    private RetentionReference() {
    }

    static double[][] run(int b, int h, int t, int d, double[] q, double[] k, double[] v, double[] w) {
        return ReferenceMath.scan(b, h, t, d, (s, bi, hi, ti) -> {
            int at = (bi * h + hi) * t + ti;
            double[] gamma = new double[d];
            Arrays.fill(gamma, Math.exp(RetentionMixer.logDecay(hi)));
            ReferenceMath.decayAndAdd(s, gamma, Numerics.row(k, at, d), Numerics.row(v, at, d));
            double[] o = ReferenceMath.read(s, Numerics.row(q, at, d), 1 / Math.sqrt(d));
            return ReferenceMath.rmsNorm(o, w, hi * d);
        });
    }
}
