package molt.student.mixer;

import java.util.Map;

/**
 * Gated DeltaNet as initialized from attention (see {@link GatedDeltaNetMixer}), as a token loop in double
 * precision. Flat row-major arrays: q, k (before RoPE), v [B, H, T, D], hidden [B, T, M]; parameters by the mixer's
 * names. Returns the output [B, H, T, D] and the final state [B, H, D, D].
 */
public final class GatedDeltaNetReference {
    private GatedDeltaNetReference() {
    }

    private static double silu(double x) {
        return x / (1 + Math.exp(-x));
    }

    private static double softplus(double x) {
        return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    }

    public static double[][] run(int bs, int h, int t, int d, int m, double[] q, double[] k, double[] v,
                                 double[] hidden, Map<String, double[]> p) {
        int w = ShortConv.WIDTH;
        double[] out = new double[bs * h * t * d];
        double[] fin = new double[bs * h * d * d];
        String[] names = {"conv_v", "conv_k", "conv_q"};
        double[][] src = {v, k, q};
        for (int b = 0; b < bs; b++) {
            for (int hi = 0; hi < h; hi++) {
                double a = -Math.exp(p.get("A_log")[hi]);
                double[][] s = new double[d][d];
                for (int ti = 0; ti < t; ti++) {
                    double[][] x = new double[3][d];
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
                            x[c][e] = silu(acc);
                        }
                        if (c > 0) {
                            double n = 0;
                            for (int e = 0; e < d; e++) {
                                n += x[c][e] * x[c][e];
                            }
                            for (int e = 0; e < d; e++) {
                                x[c][e] /= Math.sqrt(n + GatedDeltaNetMixer.EPS);
                            }
                        }
                    }
                    double bp = 0;
                    double ap = p.get("dt_bias")[hi];
                    for (int i = 0; i < m; i++) {
                        double hv = hidden[(b * t + ti) * m + i];
                        bp += hv * p.get("beta_proj.weight")[i * h + hi];
                        ap += hv * p.get("a_proj.weight")[i * h + hi];
                    }
                    double beta = 1 / (1 + Math.exp(-bp));
                    double decay = Math.exp(a * softplus(ap));
                    double[] u = new double[d];
                    for (int j = 0; j < d; j++) {
                        double pred = 0;
                        for (int i = 0; i < d; i++) {
                            s[i][j] *= decay;
                            pred += s[i][j] * x[1][i];
                        }
                        u[j] = beta * (x[0][j] - pred);
                    }
                    double[] o = new double[d];
                    double ms = 0;
                    for (int j = 0; j < d; j++) {
                        for (int i = 0; i < d; i++) {
                            s[i][j] += x[1][i] * u[j];
                        }
                    }
                    for (int j = 0; j < d; j++) {
                        for (int i = 0; i < d; i++) {
                            o[j] += s[i][j] * x[2][i];
                        }
                        o[j] /= Math.sqrt(d);
                        ms += o[j] * o[j] / d;
                    }
                    for (int j = 0; j < d; j++) {
                        double g = 0;
                        for (int i = 0; i < m; i++) {
                            g += hidden[(b * t + ti) * m + i] * p.get("gate_proj.weight")[i * (h * d) + hi * d + j];
                        }
                        out[((b * h + hi) * t + ti) * d + j] = o[j] / Math.sqrt(ms + GatedDeltaNetMixer.EPS)
                                * p.get("norm.weight")[hi * d + j] * silu(g);
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
