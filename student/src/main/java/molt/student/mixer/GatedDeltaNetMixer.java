package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Map;
import molt.teacher.model.AttentionState;
import java.util.SplittableRandom;
import java.util.function.Function;
import molt.student.core.Activations;
import molt.student.core.DeltaRule;
import molt.student.core.HeadNorm;

/**
 * {@code gated_deltanet} (Yang et al. 2025) on the shared {@link DeltaRule} core, initialized from an attention
 * layer: q, k, v are the layer's projections (before RoPE, which the delta rule does not use; GQA heads repeated),
 * each through a short convolution and SiLU, q and k L2-normalized per head; beta = sigmoid(hidden W_beta);
 * g = -exp(A_log) softplus(hidden W_a + dt_bias); o = rmsnorm_per_head(DeltaRule(q, k, v) / sqrt(D)) * w *
 * silu(hidden W_gate); the layer's o_proj follows. New parameters at standard inits: the three convolutions, W_beta,
 * W_a, dt_bias, A_log (A uniform in [1, 16]), W_gate, the norm weight (1). The decoding state
 * ({@link molt.student.core.ConvSsmState}) holds S [B, H, D, D] and the three convolution windows.
 *
 * <p>Shapes: q, k (raw), v [B, H, T, D]; hidden [B, T, M]; output [B, H, T, D].
 */
public final class GatedDeltaNetMixer extends ConvMixer {
    public static final String NAME = "gated_deltanet";
    private static final String[] CONVS = {"conv_v", "conv_k", "conv_q"};

    public GatedDeltaNetMixer(NDManager m, int heads, int headDim, int modelDim, MixerSettings settings) {
        super(NAME, m, settings, shapes(heads, headDim, modelDim, settings), heads, headDim, CONVS);
        double bound = 1 / Math.sqrt(modelDim);
        SplittableRandom r = new SplittableRandom(20250);
        initConvs(m, r);
        uniform("beta_proj.weight", m, r, bound);
        uniform("a_proj.weight", m, r, bound);
        NDArray[] dtA = SsmInit.dtBiasAndALog(m, r, heads);
        param("dt_bias", dtA[0]);
        param("A_log", dtA[1]);
        uniform("gate_proj.weight", m, r, bound);
        param("norm.weight", m.ones(shape("norm.weight")));
    }

    /** The parameters' names and shapes, in creation order. */
    static Map<String, Shape> shapes(int heads, int headDim, int modelDim, MixerSettings settings) {
        Map<String, Shape> p = convShapes(CONVS, heads, headDim);
        p.put("beta_proj.weight", new Shape(modelDim, heads));
        p.put("a_proj.weight", new Shape(modelDim, heads));
        p.put("dt_bias", new Shape(heads));
        p.put("A_log", new Shape(heads));
        p.put("gate_proj.weight", new Shape(modelDim, heads * headDim));
        p.put("norm.weight", new Shape(heads, headDim));
        return p;
    }

    /** beta and g [B, H, T] from the hidden state [B, T, M]. */
    private NDArray[] gates(NDArray hidden) {
        NDArray beta = hidden.matMul(view("beta_proj.weight", hidden)).getNDArrayInternal().sigmoid(); // [B, T, H]
        NDArray pre = hidden.matMul(view("a_proj.weight", hidden)).add(view("dt_bias", hidden));
        NDArray g = Activations.softplus(pre).mul(view("A_log", hidden).exp().neg()); // [B, T, H]
        return new NDArray[] {beta.transpose(0, 2, 1), g.transpose(0, 2, 1)}; // [B, H, T] each
    }

    private float scale() {
        return (float) (1.0 / Math.sqrt(headDim));
    }

    @Override
    NDList chunked(NDManager scope, NDArray[] conv, NDArray hidden) {
        NDArray[] bg = gates(hidden);
        return DeltaRule.chunked(scope, HeadNorm.l2(conv[2]), HeadNorm.l2(conv[1]), conv[0], bg[0], bg[1], scale(),
                null, settings.chunkSize());
    }

    @Override
    Function<NDArray, NDList> recurrence(NDArray[] conv, NDArray hidden) {
        NDArray[] bg = gates(hidden);
        return s -> DeltaRule.step(HeadNorm.l2(conv[2]), HeadNorm.l2(conv[1]), conv[0], bg[0], bg[1], scale(), s);
    }

    /** rmsnorm_per_head(o) * w * silu(hidden W_gate). */
    @Override
    NDArray finish(NDArray o, NDArray[] conv, NDArray hidden) {
        NDArray gate = perHead("gate_proj.weight", hidden); // [B, H, T, D]
        NDArray normed = HeadNorm.rms(o, gain("norm.weight", o));
        return normed.mul(Activations.silu(gate));
    }

    /**
     * {@link ConvCpuStep} with the gated delta rule and its output, from a copy of the prefilled state: q, k
     * L2-normalized; beta = sigmoid(hidden W_beta), g = -exp(A_log) softplus(hidden W_a + dt_bias); S = e^g S;
     * S += k (beta (v - S^T k))^T; o = S^T q / sqrt(D); out = rmsnorm_per_head(o) w silu(hidden W_gate).
     */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        molt.student.core.ConvSsmState st = javaState(prefilled);
        if (st == null) {
            return null;
        }
        float[] wBeta = values("beta_proj.weight"); // [M, H]
        float[] wA = values("a_proj.weight"); // [M, H]
        float[] dtBias = values("dt_bias");
        float[] aLog = values("A_log");
        float[] wGate = values("gate_proj.weight"); // [M, H*D]
        float[] norm = values("norm.weight"); // [H, D]
        int model = wBeta.length / heads;
        float scale = scale();
        return new ConvCpuStep(parameters(), CONVS, st, heads, headDim, kvGroups) {
            private final float[] beta = new float[heads];
            private final float[] a = new float[heads];
            private final float[] gate = new float[heads * headDim];
            private final float[] q = new float[headDim];
            private final float[] k = new float[headDim];
            private final float[] u = new float[headDim];

            /** x[off ..] of one head, L2-normalized into {@code into}. */
            private void l2(float[] x, int off, float[] into) {
                double ss = 0;
                for (int j = 0; j < d; j++) {
                    ss += (double) x[off + j] * x[off + j];
                }
                float inv = (float) (1.0 / Math.sqrt((float) ss + molt.student.core.HeadNorm.EPS));
                for (int j = 0; j < d; j++) {
                    into[j] = x[off + j] * inv;
                }
            }

            @Override
            void recur(float[] hidden, float[] out) {
                molt.teacher.cpu.Kernels.matVec(hidden, 0, wBeta, model, heads, null, beta, 0);
                molt.teacher.cpu.Kernels.matVec(hidden, 0, wA, model, heads, null, a, 0);
                molt.teacher.cpu.Kernels.matVec(hidden, 0, wGate, model, heads * d, null, gate, 0);
                float[] v = conv[0];
                for (int h = 0; h < heads; h++) {
                    float b = molt.teacher.cpu.Kernels.sigmoid(beta[h]);
                    float decay = (float) Math.exp(molt.teacher.cpu.Kernels.softplus(a[h] + dtBias[h]) * -(float) Math.exp(aLog[h]));
                    l2(conv[2], h * d, q);
                    l2(conv[1], h * d, k);
                    int sh = h * d * d;
                    for (int i = sh; i < sh + d * d; i++) {
                        s[i] *= decay;
                    }
                    java.util.Arrays.fill(u, 0f);
                    molt.teacher.cpu.Kernels.addMatVec(k, 0, s, sh, d, d, d, u, 0); // S^T k
                    for (int vv = 0; vv < d; vv++) {
                        u[vv] = (v[h * d + vv] - u[vv]) * b;
                    }
                    for (int kk = 0; kk < d; kk++) {
                        molt.teacher.cpu.Kernels.axpy(k[kk], u, 0, s, sh + kk * d, d); // S += k u^T
                    }
                    java.util.Arrays.fill(out, h * d, (h + 1) * d, 0f);
                    molt.teacher.cpu.Kernels.addMatVec(q, 0, s, sh, d, d, d, out, h * d); // S^T q
                    for (int vv = 0; vv < d; vv++) {
                        out[h * d + vv] *= scale;
                    }
                    rmsPerHead(out, h, norm);
                    for (int vv = 0; vv < d; vv++) {
                        out[h * d + vv] *= molt.teacher.cpu.Kernels.silu(gate[h * d + vv]);
                    }
                }
            }
        };
    }
}
