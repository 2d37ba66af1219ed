package molt.student.mixer;

/**
 * GLA written from its recurrence as a token loop in double precision (see {@link GlaMixer}). Flat row-major
 * arrays: q, k, v [B, H, T, D]; learned-gate parameters w1 [H, D, 16], w2 [H, 16, D], bias [H, D], gain [H, D]
 * (all null for the Liger form). Returns the output [B, H, T, D] and the final state [B, H, D, D].
 */
public final class GlaReference {
    private GlaReference() {
    }

    private static double logSigmoid(double x) {
        return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
    }

    private static double[] softmax(double[] x) {
        double max = Double.NEGATIVE_INFINITY;
        for (double e : x) {
            max = Math.max(max, e);
        }
        double z = 0;
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = Math.exp(x[i] - max);
            z += y[i];
        }
        for (int i = 0; i < x.length; i++) {
            y[i] /= z;
        }
        return y;
    }

    public static double[][] run(boolean liger, int b, int h, int t, int d, double[] q, double[] k, double[] v,
                                 double[] w1, double[] w2, double[] bias, double[] gain) {
        int r = GlaMixer.RANK;
        double[] out = new double[b * h * t * d];
        double[] fin = new double[b * h * d * d];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                double[][] s = new double[d][d];
                for (int ti = 0; ti < t; ti++) {
                    int base = ((bi * h + hi) * t + ti) * d;
                    double[] qt = java.util.Arrays.copyOfRange(q, base, base + d);
                    double[] kt = java.util.Arrays.copyOfRange(k, base, base + d);
                    double[] gk = new double[d];
                    if (liger) {
                        for (int i = 0; i < d; i++) {
                            gk[i] = logSigmoid(kt[i]) / 16;
                        }
                        qt = softmax(qt);
                        kt = softmax(kt);
                    } else {
                        double[] low = new double[r];
                        for (int j = 0; j < r; j++) {
                            for (int i = 0; i < d; i++) {
                                low[j] += kt[i] * w1[(hi * d + i) * r + j];
                            }
                        }
                        for (int i = 0; i < d; i++) {
                            double x = bias[hi * d + i];
                            for (int j = 0; j < r; j++) {
                                x += low[j] * w2[(hi * r + j) * d + i];
                            }
                            gk[i] = logSigmoid(x) / 16;
                        }
                    }
                    for (int i = 0; i < d; i++) {
                        for (int j = 0; j < d; j++) {
                            s[i][j] = Math.exp(gk[i]) * s[i][j] + kt[i] * v[base + j];
                        }
                    }
                    double scale = liger ? 1 : 1 / Math.sqrt(d);
                    double[] o = new double[d];
                    double ms = 0;
                    for (int j = 0; j < d; j++) {
                        for (int i = 0; i < d; i++) {
                            o[j] += qt[i] * s[i][j];
                        }
                        o[j] *= scale;
                        ms += o[j] * o[j] / d;
                    }
                    for (int j = 0; j < d; j++) {
                        out[base + j] = liger ? o[j] : o[j] / Math.sqrt(ms + GlaMixer.EPS) * gain[hi * d + j];
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
