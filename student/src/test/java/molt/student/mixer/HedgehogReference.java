package molt.student.mixer;

import static molt.student.core.Numerics.dot;

import molt.student.core.HedgehogFeatureMap;

/**
 * The Hedgehog mixers written straight from their definitions as token-by-token loops in double precision: the
 * reference that the chunked and recurrent forms are tested against. Inputs are flat row-major arrays:
 * q, k, v [B, H, T, D], feature-map weights [H, D, F], window factors f [H]; outputs [B, H, T, D]. Built for batch
 * b, heads h, time t, head dim d and feature dim f.
 */
record HedgehogReference(int b, int h, int t, int d, int f) {

    /** phi(x) = [softmax(x W), softmax(-x W)] clamped at 1e-12, for one vector x [D] and head weights W. */
    public double[] phi(double[] w, int head, double[] x) {
        double[] proj = new double[f];
        for (int j = 0; j < f; j++) {
            double s = 0;
            for (int i = 0; i < d; i++) {
                s += x[i] * w[(head * d + i) * f + j];
            }
            proj[j] = s;
        }
        double[] neg = new double[f];
        for (int j = 0; j < f; j++) {
            neg[j] = -proj[j];
        }
        double[] out = new double[2 * f];
        System.arraycopy(ReferenceMath.softmax(proj), 0, out, 0, f);
        System.arraycopy(ReferenceMath.softmax(neg), 0, out, f, f);
        for (int j = 0; j < 2 * f; j++) {
            out[j] = Math.max(out[j], HedgehogFeatureMap.CLAMP);
        }
        return out;
    }

    private double[] vec(double[] a, int bi, int hi, int ti) {
        double[] x = new double[d];
        System.arraycopy(a, ((bi * h + hi) * t + ti) * d, x, 0, d);
        return x;
    }

    /**
     * Linear attention, y_t = sum_{s<=t} (phi(q_t).phi(k_s)) v_s / sum_{s<=t} phi(q_t).phi(k_s).
     */
    public double[] linear(double[] q, double[] k, double[] v, double[] wq, double[] wk) {
        return window(q, k, v, wq, wk, null, 0);
    }

    /**
     * Sliding window + linear: for query t the window holds tokens t-w+1..t, every earlier token goes to the
     * linear term, and y_t = (sigmoid(f_h) sum_win exp(q.k/sqrt(D) - m_t) v + sum_before phi(q).phi(k) v)
     * / (sigmoid(f_h) sum_win exp(q.k/sqrt(D) - m_t) + sum_before phi(q).phi(k)), m_t the max score in the window.
     * With {@code factors} null (and w = 0) this is plain linear attention.
     */
    public double[] window(double[] q, double[] k, double[] v, double[] wq, double[] wk, double[] factors, int w) {
        double[] y = new double[b * h * t * d];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                double[][] pk = new double[t][];
                for (int s = 0; s < t; s++) {
                    pk[s] = phi(wk, hi, vec(k, bi, hi, s));
                }
                double gate = factors == null ? 0 : 1 / (1 + Math.exp(-factors[hi]));
                for (int ti = 0; ti < t; ti++) {
                    double[] qt = vec(q, bi, hi, ti);
                    double[] pq = phi(wq, hi, qt);
                    double[] num = new double[d];
                    double den = 0;
                    int firstWin = Math.max(0, ti - w + 1);
                    double m = Double.NEGATIVE_INFINITY;
                    for (int s = firstWin; s <= ti && w > 0; s++) {
                        m = Math.max(m, dot(qt, vec(k, bi, hi, s)) / Math.sqrt(d));
                    }
                    for (int s = 0; s <= ti; s++) {
                        double[] vs = vec(v, bi, hi, s);
                        double a;
                        if (s >= firstWin && w > 0) {
                            a = gate * Math.exp(dot(qt, vec(k, bi, hi, s)) / Math.sqrt(d) - m);
                        } else {
                            a = dot(pq, pk[s]);
                        }
                        den += a;
                        for (int i = 0; i < d; i++) {
                            num[i] += a * vs[i];
                        }
                    }
                    for (int i = 0; i < d; i++) {
                        y[((bi * h + hi) * t + ti) * d + i] = num[i] / den;
                    }
                }
            }
        }
        return y;
    }

    /**
     * The linear state after the sequence: S [B, H, 2F, D] = sum phi(k_s) v_s^T and z [B, H, 2F] = sum phi(k_s)
     * over tokens s < upTo (all tokens for plain linear attention, tokens before the last window otherwise).
     */
    public double[][] state(double[] k, double[] v, double[] wk, int upTo) {
        int f2 = 2 * f;
        double[] s = new double[b * h * f2 * d];
        double[] z = new double[b * h * f2];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int ti = 0; ti < upTo; ti++) {
                    double[] pk = phi(wk, hi, vec(k, bi, hi, ti));
                    double[] vs = vec(v, bi, hi, ti);
                    for (int a = 0; a < f2; a++) {
                        z[(bi * h + hi) * f2 + a] += pk[a];
                        for (int i = 0; i < d; i++) {
                            s[((bi * h + hi) * f2 + a) * d + i] += pk[a] * vs[i];
                        }
                    }
                }
            }
        }
        return new double[][] {s, z};
    }
}
