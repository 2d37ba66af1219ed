package molt.student.mixer;

import static molt.student.mixer.ReferenceMath.project;
import static molt.student.mixer.ReferenceMath.shortConv;

import java.util.Map;
import molt.student.core.DeltaRuleReference;
import molt.student.core.HeadNorm;

/**
 * Gated DeltaNet as initialized from attention (see {@link GatedDeltaNetMixer}), as a token loop in double
 * precision. Flat row-major arrays: q, k (before RoPE), v [B, H, T, D], hidden [B, T, M]; parameters by the mixer's
 * names. Returns the output [B, H, T, D] and the final state [B, H, D, D].
 */
final class GatedDeltaNetReference {
    private GatedDeltaNetReference() {
    }

    static double[][] run(int bs, int h, int t, int d, int m, double[] q, double[] k, double[] v, double[] hidden,
                          Map<String, double[]> p) {
        String[] names = {"conv_v", "conv_k", "conv_q"};
        double[][] src = {v, k, q};
        return ReferenceMath.scan(bs, h, t, d, (s, b, hi, ti) -> {
            double[][] x = new double[3][]; // v, then k and q L2-normalized
            for (int c = 0; c < 3; c++) {
                x[c] = shortConv(src[c], p.get(names[c] + ".weight"), p.get(names[c] + ".bias"), b, h, hi, t, ti, d);
                x[c] = c > 0 ? l2(x[c]) : x[c];
            }
            double beta = 1 / (1 + Math.exp(-project(hidden, p.get("beta_proj.weight"), b, t, ti, m, h, hi)));
            double a = -Math.exp(p.get("A_log")[hi]);
            double decay = Math.exp(a * ReferenceMath.softplus(p.get("dt_bias")[hi]
                    + project(hidden, p.get("a_proj.weight"), b, t, ti, m, h, hi)));
            double[] o = DeltaRuleReference.step(s, x[1], x[0], x[2], beta, decay, 1 / Math.sqrt(d));
            double[] normed = ReferenceMath.rmsNorm(o, p.get("norm.weight"), hi * d);
            for (int j = 0; j < d; j++) {
                normed[j] *= ReferenceMath.silu(project(hidden, p.get("gate_proj.weight"), b, t, ti, m, h * d,
                        hi * d + j));
            }
            return normed;
        });
    }

    /** x / sqrt(|x|^2 + eps). */
    private static double[] l2(double[] x) {
        double n = 0;
        for (double e : x) {
            n += e * e;
        }
        double[] y = new double[x.length];
        for (int e = 0; e < x.length; e++) {
            y[e] = x[e] / Math.sqrt(n + HeadNorm.EPS);
        }
        return y;
    }
}
