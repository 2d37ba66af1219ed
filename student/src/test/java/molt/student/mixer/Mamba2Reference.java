package molt.student.mixer;

import static molt.student.mixer.ReferenceMath.project;
import static molt.student.mixer.ReferenceMath.shortConv;
import static molt.student.mixer.ReferenceMath.silu;

import java.util.Arrays;
import java.util.Map;

/**
 * Mamba-2 as initialized from attention (see {@link Mamba2Mixer}), written as a token loop in double precision.
 * Flat row-major arrays: q, k, v [B, H, T, D] (q and k before RoPE), hidden [B, T, M]; parameters by the mixer's
 * names. Returns the output [B, H, T, D] and the final state [B, H, D, D].
 */
final class Mamba2Reference {
    private Mamba2Reference() {
    }

    static double[][] run(int bs, int h, int t, int d, int m, double[] q, double[] k, double[] v, double[] hidden,
                          Map<String, double[]> p) {
        double[][] src = {v, k, q};
        String[] names = {"conv_x", "conv_b", "conv_c"};
        return ReferenceMath.scan(bs, h, t, d, (s, b, hi, ti) -> {
            double[][] conv = new double[3][]; // x, B, C
            for (int c = 0; c < 3; c++) {
                conv[c] = shortConv(src[c], p.get(names[c] + ".weight"), p.get(names[c] + ".bias"), b, h, hi, t, ti, d);
            }
            double dt = ReferenceMath.softplus(p.get("dt_bias")[hi]
                    + project(hidden, p.get("dt_proj.weight"), b, t, ti, m, h, hi));
            double[] decay = new double[d];
            Arrays.fill(decay, Math.exp(dt * -Math.exp(p.get("A_log")[hi])));
            double[] dtx = new double[d];
            for (int j = 0; j < d; j++) {
                dtx[j] = dt * conv[0][j];
            }
            ReferenceMath.decayAndAdd(s, decay, conv[1], dtx);
            double[] y = ReferenceMath.read(s, conv[2], 1);
            for (int j = 0; j < d; j++) {
                y[j] += p.get("D")[hi] * conv[0][j];
                y[j] *= silu(project(hidden, p.get("z_proj.weight"), b, t, ti, m, h * d, hi * d + j));
            }
            return ReferenceMath.rmsNorm(y, p.get("norm.weight"), hi * d);
        });
    }
}
