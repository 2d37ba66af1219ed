package molt.student.mixer;

/**
 * The scalar functions of the double-precision references, written straight from their definitions (one copy, so
 * every reference means the same thing by them).
 */
final class ReferenceMath {
    private ReferenceMath() {
    }

    static double silu(double x) {
        return x / (1 + Math.exp(-x));
    }

    static double softplus(double x) {
        return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    }

    static double logSigmoid(double x) {
        return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
    }

    static double[] softmax(double[] x) {
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

    /** One head's RMS norm: x / sqrt(mean(x^2) + eps) * gain[offset + j]. */
    static double[] rmsNorm(double[] x, double[] gain, int offset) {
        double ms = 0;
        for (double e : x) {
            ms += e * e / x.length;
        }
        double[] y = new double[x.length];
        for (int j = 0; j < x.length; j++) {
            y[j] = x[j] / Math.sqrt(ms + molt.student.core.HeadNorm.EPS) * gain[offset + j];
        }
        return y;
    }

    /**
     * The width-4 causal convolution plus SiLU at time {@code ti} of head {@code hi} (batch {@code b}) of
     * src [B, H, T, D], with weights w [H, D, 4] and bias [H, D]; inputs before time 0 are 0.
     */
    static double[] shortConv(double[] src, double[] w, double[] bias, int b, int h, int hi, int t, int ti, int d) {
        int width = molt.student.core.ShortConv.WIDTH;
        double[] x = new double[d];
        for (int e = 0; e < d; e++) {
            double acc = bias[hi * d + e];
            for (int j = 0; j < width; j++) {
                int tt = ti - (width - 1) + j;
                if (tt >= 0) {
                    acc += w[(hi * d + e) * width + j] * src[((b * h + hi) * t + tt) * d + e];
                }
            }
            x[e] = silu(acc);
        }
        return x;
    }

    /** sum_i hidden[b, ti, i] w[i, col] for hidden [B, T, M] and w [M, cols]. */
    static double project(double[] hidden, double[] w, int b, int t, int ti, int m, int cols, int col) {
        double s = 0;
        for (int i = 0; i < m; i++) {
            s += hidden[(b * t + ti) * m + i] * w[i * cols + col];
        }
        return s;
    }

    /** One token of a matrix-state reference for one head. */
    @FunctionalInterface
    interface Token {
        /** The output [D] of token {@code ti} of batch {@code b}, head {@code hi}; updates the head's s [D][D]. */
        double[] apply(double[][] s, int b, int hi, int ti);
    }

    /**
     * Runs {@code token} over every batch, head and token in order, each head from S = 0: returns the outputs
     * [B, H, T, D] and the final states [B, H, D, D].
     */
    static double[][] scan(int bs, int h, int t, int d, Token token) {
        double[] out = new double[bs * h * t * d];
        double[] fin = new double[bs * h * d * d];
        for (int b = 0; b < bs; b++) {
            for (int hi = 0; hi < h; hi++) {
                double[][] s = new double[d][d];
                for (int ti = 0; ti < t; ti++) {
                    System.arraycopy(token.apply(s, b, hi, ti), 0, out, ((b * h + hi) * t + ti) * d, d);
                }
                molt.student.core.Numerics.store(s, fin, b * h + hi);
            }
        }
        return new double[][] {out, fin};
    }

    /** The decaying outer-product update S[i][j] = decay[i] S[i][j] + k[i] v[j]. */
    static void decayAndAdd(double[][] s, double[] decay, double[] k, double[] v) {
        for (int i = 0; i < k.length; i++) {
            for (int j = 0; j < v.length; j++) {
                s[i][j] = decay[i] * s[i][j] + k[i] * v[j];
            }
        }
    }

    /** The read q^T S times {@code scale}: [V]. */
    static double[] read(double[][] s, double[] q, double scale) {
        double[] o = new double[s[0].length];
        for (int j = 0; j < o.length; j++) {
            for (int i = 0; i < q.length; i++) {
                o[j] += q[i] * s[i][j];
            }
            o[j] *= scale;
        }
        return o;
    }
}
