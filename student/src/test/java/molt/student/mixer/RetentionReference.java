package molt.student.mixer;

/**
 * Retention written from its recurrence as a token loop in double precision: S_t = gamma_h S_{t-1} + k_t v_t^T,
 * o_t = q_t^T S_t / sqrt(D), then an RMS norm over D with gain w[h]. Flat row-major arrays: q, k, v [B, H, T, D],
 * w [H, D]; returns the output [B, H, T, D] and the final state [B, H, D, D].
 */
public final class RetentionReference {
    private RetentionReference() {
    }

    public static double[][] run(int b, int h, int t, int d, double[] q, double[] k, double[] v, double[] w) {
        double[] out = new double[b * h * t * d];
        double[] fin = new double[b * h * d * d];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                double gamma = Math.exp(RetentionMixer.logDecay(hi));
                double[][] s = new double[d][d];
                for (int ti = 0; ti < t; ti++) {
                    int base = ((bi * h + hi) * t + ti) * d;
                    for (int i = 0; i < d; i++) {
                        for (int j = 0; j < d; j++) {
                            s[i][j] = gamma * s[i][j] + k[base + i] * v[base + j];
                        }
                    }
                    double[] o = new double[d];
                    double ms = 0;
                    for (int j = 0; j < d; j++) {
                        for (int i = 0; i < d; i++) {
                            o[j] += q[base + i] * s[i][j];
                        }
                        o[j] /= Math.sqrt(d);
                        ms += o[j] * o[j] / d;
                    }
                    for (int j = 0; j < d; j++) {
                        out[base + j] = o[j] / Math.sqrt(ms + RetentionMixer.EPS) * w[hi * d + j];
                    }
                }
                for (int i = 0; i < d; i++) {
                    for (int j = 0; j < d; j++) {
                        fin[((bi * h + hi) * d + i) * d + j] = s[i][j];
                    }
                }
            }
        }
        return new double[][] {out, fin};
    }
}
