package molt.student.core;

/**
 * The gated delta rule as a token loop in double precision: S = e^g S; u = beta (v - S^T k); S += k u^T;
 * o = scale S^T q. Flat row-major arrays: q, k [BH, T, K], v [BH, T, V], beta, g [BH, T].
 */
public final class DeltaRuleReference {
    private DeltaRuleReference() {
    }

    /** One token for one head: updates s [K][V] in place and returns the output [V]. */
    public static double[] step(double[][] s, double[] k, double[] v, double[] q, double beta, double decay,
                                double scale) {
        int kd = k.length;
        int vd = v.length;
        double[] u = new double[vd];
        for (int j = 0; j < vd; j++) {
            double pred = 0;
            for (int i = 0; i < kd; i++) {
                s[i][j] *= decay;
                pred += s[i][j] * k[i];
            }
            u[j] = beta * (v[j] - pred);
        }
        double[] o = new double[vd];
        for (int j = 0; j < vd; j++) {
            for (int i = 0; i < kd; i++) {
                s[i][j] += k[i] * u[j];
            }
            for (int i = 0; i < kd; i++) {
                o[j] += s[i][j] * q[i];
            }
            o[j] *= scale;
        }
        return o;
    }

    /** All tokens of {@code bh} heads: the output [BH, T, V] and the final state [BH, K, V]. */
    static double[][] run(int bh, int t, int kd, int vd, double[] q, double[] k, double[] v, double[] beta,
                          double[] g, double scale) {
        double[] out = new double[bh * t * vd];
        double[] fin = new double[bh * kd * vd];
        for (int n = 0; n < bh; n++) {
            double[][] s = new double[kd][vd];
            for (int ti = 0; ti < t; ti++) {
                int at = n * t + ti;
                double[] o = step(s, Numerics.row(k, at, kd), Numerics.row(v, at, vd), Numerics.row(q, at, kd),
                        beta[at], Math.exp(g[at]), scale);
                System.arraycopy(o, 0, out, at * vd, vd);
            }
            Numerics.store(s, fin, n);
        }
        return new double[][] {out, fin};
    }
}
