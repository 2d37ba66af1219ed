package molt.student.mixer;

import java.util.Map;

/**
 * Mamba-2 as initialized from attention (see {@link Mamba2Mixer}), written as a token loop in double precision.
 * Flat row-major arrays: q, k, v [B, H, T, D] (q and k before RoPE), hidden [B, T, M]; parameters by the mixer's
 * names. Returns the output [B, H, T, D] and the final state [B, H, D, D].
 */
public final class Mamba2Reference {
    private Mamba2Reference() {
    }

    private static double silu(double x) {
        return x / (1 + Math.exp(-x));
    }

    public static double[][] run(int bs, int h, int t, int d, int m, double[] q, double[] k, double[] v,
                                 double[] hidden, Map<String, double[]> p) {
        int w = Mamba2Mixer.WIDTH;
        double[] out = new double[bs * h * t * d];
        double[] fin = new double[bs * h * d * d];
        for (int b = 0; b < bs; b++) {
            for (int hi = 0; hi < h; hi++) {
                double a = -Math.exp(p.get("A_log")[hi]);
                double[][] s = new double[d][d];
                for (int ti = 0; ti < t; ti++) {
                    double[][] conv = new double[3][d];
                    double[][] src = {v, k, q};
                    String[] names = {"conv_x", "conv_b", "conv_c"};
                    for (int c = 0; c < 3; c++) {
                        for (int e = 0; e < d; e++) {
                            double acc = p.get(names[c] + ".bias")[hi * d + e];
                            for (int j = 0; j < w; j++) {
                                int tt = ti - (w - 1) + j;
                                if (tt >= 0) {
                                    acc += p.get(names[c] + ".weight")[(hi * d + e) * w + j]
                                            * src[c][((b * h + hi) * t + tt) * d + e];
                                }
                            }
                            conv[c][e] = silu(acc);
                        }
                    }
                    double pre = p.get("dt_bias")[hi];
                    for (int i = 0; i < m; i++) {
                        pre += hidden[(b * t + ti) * m + i] * p.get("dt_proj.weight")[i * h + hi];
                    }
                    double dt = Math.max(pre, 0) + Math.log1p(Math.exp(-Math.abs(pre)));
                    double decay = Math.exp(dt * a);
                    for (int i = 0; i < d; i++) {
                        for (int j = 0; j < d; j++) {
                            s[i][j] = decay * s[i][j] + conv[1][i] * dt * conv[0][j];
                        }
                    }
                    double[] y = new double[d];
                    double ms = 0;
                    for (int j = 0; j < d; j++) {
                        for (int i = 0; i < d; i++) {
                            y[j] += conv[2][i] * s[i][j];
                        }
                        y[j] += p.get("D")[hi] * conv[0][j];
                        double z = 0;
                        for (int i = 0; i < m; i++) {
                            z += hidden[(b * t + ti) * m + i] * p.get("z_proj.weight")[i * (h * d) + hi * d + j];
                        }
                        y[j] *= silu(z);
                        ms += y[j] * y[j] / d;
                    }
                    for (int j = 0; j < d; j++) {
                        out[((b * h + hi) * t + ti) * d + j] = y[j] / Math.sqrt(ms + Mamba2Mixer.EPS)
                                * p.get("norm.weight")[hi * d + j];
                    }
                }
                for (int i = 0; i < d; i++) {
                    for (int j = 0; j < d; j++) {
                        fin[((b * h + hi) * d + i) * d + j] = s[i][j];
                    }
                }
            }
        }
        return new double[][] {out, fin};
    }
}
