package molt.student.mixer;

import molt.student.core.Numerics;

/**
 * GLA written from its recurrence as a token loop in double precision (see {@link GlaMixer} and {@link LigerMixer}),
 * and Liger's window mix ({@link LigerWindowMixer}). Flat row-major arrays: q, k, v [B, H, T, D]; learned-gate
 * parameters w1 [H, D, 16], w2 [H, 16, D], bias [H, D], gain [H, D] (unused by the Liger form). Returns the output
 * [B, H, T, D] and the final state [B, H, D, D].
 */
final class GlaReference {
    private GlaReference() {
    }

    /** The learned gate's log-decays [D] for one key of head hi: logsigmoid(k W1 W2 + b) / 16. */
    private static double[] learnedGate(double[] kt, int hi, double[] w1, double[] w2, double[] bias) {
        int r = GlaMixer.RANK;
        int d = kt.length;
        double[] low = new double[r];
        for (int j = 0; j < r; j++) {
            for (int i = 0; i < d; i++) {
                low[j] += kt[i] * w1[(hi * d + i) * r + j];
            }
        }
        double[] gk = new double[d];
        for (int i = 0; i < d; i++) {
            double x = bias[hi * d + i];
            for (int j = 0; j < r; j++) {
                x += low[j] * w2[(hi * r + j) * d + i];
            }
            gk[i] = ReferenceMath.logSigmoid(x) / 16;
        }
        return gk;
    }

    static double[][] run(boolean liger, int b, int h, int t, int d, double[] q, double[] k, double[] v,
                          double[] w1, double[] w2, double[] bias, double[] gain) {
        return ReferenceMath.scan(b, h, t, d, (s, bi, hi, ti) -> {
            int at = (bi * h + hi) * t + ti;
            double[] qt = Numerics.row(q, at, d);
            double[] kt = Numerics.row(k, at, d);
            double[] gk = new double[d];
            if (liger) {
                for (int i = 0; i < d; i++) {
                    gk[i] = ReferenceMath.logSigmoid(kt[i]) / 16;
                }
                qt = ReferenceMath.softmax(qt);
                kt = ReferenceMath.softmax(kt);
            } else {
                gk = learnedGate(kt, hi, w1, w2, bias);
            }
            double[] decay = new double[d];
            for (int i = 0; i < d; i++) {
                decay[i] = Math.exp(gk[i]);
            }
            ReferenceMath.decayAndAdd(s, decay, kt, Numerics.row(v, at, d));
            double[] o = ReferenceMath.read(s, qt, liger ? 1 : 1 / Math.sqrt(d));
            return liger ? o : ReferenceMath.rmsNorm(o, gain, hi * d);
        });
    }

    /** gla_liger_window: 0.5 x softmax over the w most recent tokens (scale 1/sqrt(D)) + 0.5 x Liger's GLA. */
    static double[] ligerWindow(int b, int h, int t, int d, double[] q, double[] k, double[] v, int w) {
        double[] gla = run(true, b, h, t, d, q, k, v, null, null, null, null)[0];
        double[] out = new double[gla.length];
        for (int bh = 0; bh < b * h; bh++) {
            for (int i = 0; i < t; i++) {
                int first = Math.max(0, i - w + 1);
                double[] s = new double[i - first + 1];
                for (int j = first; j <= i; j++) {
                    double dot = 0;
                    for (int e = 0; e < d; e++) {
                        dot += q[(bh * t + i) * d + e] * k[(bh * t + j) * d + e];
                    }
                    s[j - first] = dot / Math.sqrt(d);
                }
                double[] p = ReferenceMath.softmax(s);
                for (int e = 0; e < d; e++) {
                    double acc = 0;
                    for (int j = first; j <= i; j++) {
                        acc += p[j - first] * v[(bh * t + j) * d + e];
                    }
                    int at = (bh * t + i) * d + e;
                    out[at] = 0.5 * acc + 0.5 * gla[at];
                }
            }
        }
        return out;
    }
}
