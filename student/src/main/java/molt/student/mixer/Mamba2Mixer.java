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
import molt.student.core.HeadNorm;
import molt.student.core.ScalarDecay;

/**
 * {@code mamba2}: the selective state-space mixer of Mamba-2 (Dao and Gu 2024), initialized from an attention
 * layer as in "Mamba in the Llama" (Wang et al. 2024): x comes from the value projection, B from the key and C from
 * the query (both before RoPE, which is dropped; GQA heads already repeated), out_proj is the layer's o_proj (the
 * student layer applies it). Each attention head is one SSM head with state size = head dim; no 1/sqrt(D) scale.
 *
 * <pre>
 *   x, B, C = silu(causal depthwise conv, width 4, of v, k, q)     per channel, with bias
 *   dt = softplus(hidden W_dt + dt_bias)  [B, H, T];  A = -exp(A_log);  g = dt * A  (log-decay, <= 0)
 *   S_t = exp(g_t) S_{t-1} + B_t (dt_t x_t)^T;  y_t = C_t^T S_t + D * x_t        (the scalar-decay core)
 *   out = rmsnorm_per_head(y * silu(hidden W_z)) * norm_weight
 * </pre>
 *
 * New parameters at Mamba's standard inits: conv weights [H, D, 4] and biases [H, D] for x, B, C (uniform
 * +-1/2, as a width-4 conv is initialized), W_z [M, H*D] and W_dt [M, H] (uniform +-1/sqrt(M)), dt_bias (the inverse
 * softplus of dt log-uniform in [0.001, 0.1]), A_log = log(A) with A uniform in [1, 16], D = 1, norm weight = 1. The
 * decoding state ({@link molt.student.core.ConvSsmState}) holds S [B, H, D, D] and the last 3 inputs of each
 * convolution.
 *
 * <p>Shapes: inputs [B, H, T, D] (q, k raw; v), hidden [B, T, M]; output [B, H, T, D].
 */
public final class Mamba2Mixer extends ConvMixer {
    public static final String NAME = "mamba2";
    private static final String[] CONVS = {"conv_x", "conv_b", "conv_c"};

    public Mamba2Mixer(NDManager m, int heads, int headDim, int modelDim, MixerSettings settings) {
        super(NAME, m, settings, shapes(heads, headDim, modelDim, settings), heads, headDim, CONVS);
        SplittableRandom r = new SplittableRandom(20240);
        initConvs(m, r);
        uniform("z_proj.weight", m, r, 1 / Math.sqrt(modelDim));
        uniform("dt_proj.weight", m, r, 1 / Math.sqrt(modelDim));
        NDArray[] dtA = SsmInit.dtBiasAndALog(m, r, heads);
        param("dt_bias", dtA[0]);
        param("A_log", dtA[1]);
        param("D", m.ones(shape("D")));
        param("norm.weight", m.ones(shape("norm.weight")));
    }

    /** The parameters' names and shapes, in creation order. */
    static Map<String, Shape> shapes(int heads, int headDim, int modelDim, MixerSettings settings) {
        Map<String, Shape> p = convShapes(CONVS, heads, headDim);
        p.put("z_proj.weight", new Shape(modelDim, heads * headDim));
        p.put("dt_proj.weight", new Shape(modelDim, heads));
        p.put("dt_bias", new Shape(heads));
        p.put("A_log", new Shape(heads));
        p.put("D", new Shape(heads));
        p.put("norm.weight", new Shape(heads, headDim));
        return p;
    }

    /** dt [B, H, T] = softplus(hidden W_dt + dt_bias). */
    private NDArray dt(NDArray hidden) {
        NDArray pre = hidden.matMul(view("dt_proj.weight", hidden)).add(view("dt_bias", hidden)); // [B, T, H]
        return Activations.softplus(pre).transpose(0, 2, 1); // [B, H, T]
    }

    /** The recurrence's inputs from the convolutions' outputs conv = (x, B, C) and the hidden state. */
    private NDArray[] recurrenceInputs(NDArray[] conv, NDArray hidden) {
        NDArray dt = dt(hidden); // [B, H, T]
        NDArray a = view("A_log", dt).exp().neg().reshape(1, heads, 1); // [1, H, 1]
        return new NDArray[] {conv[0].mul(dt.expandDims(-1)), dt.mul(a)}; // dt x [B, H, T, D]; g = dt A [B, H, T]
    }

    @Override
    NDList chunked(NDManager scope, NDArray[] conv, NDArray hidden) {
        NDArray[] xg = recurrenceInputs(conv, hidden);
        return ScalarDecay.chunked(scope, conv[2], conv[1], xg[0], xg[1], 1f, null, settings.chunkSize()); // C, B, dt x
    }

    @Override
    Function<NDArray, NDList> recurrence(NDArray[] conv, NDArray hidden) {
        NDArray[] xg = recurrenceInputs(conv, hidden);
        return s -> ScalarDecay.step(conv[2], conv[1], xg[0], xg[1], 1f, s);
    }

    /** out = rmsnorm_per_head((y + D x) * silu(hidden W_z)) * norm_weight, for x = conv[0]. */
    @Override
    NDArray finish(NDArray y, NDArray[] conv, NDArray hidden) {
        NDArray x = conv[0];
        NDArray withSkip = y.add(x.mul(view("D", x).reshape(1, heads, 1, 1))); // D [H] -> [1, H, 1, 1]
        NDArray gated = withSkip.mul(Activations.silu(perHead("z_proj.weight", hidden))); // z [B, H, T, D]
        return HeadNorm.rms(gated, gain("norm.weight", gated));
    }

    /**
     * {@link ConvCpuStep} with Mamba-2's recurrence and output, from a copy of the prefilled state:
     * dt = softplus(hidden W_dt + dt_bias), S = exp(dt A) S + B (dt x)^T, y = C^T S, out = rmsnorm_per_head((y + D x)
     * silu(hidden W_z)) w.
     */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        molt.student.core.ConvSsmState st = javaState(prefilled);
        if (st == null) {
            return null;
        }
        float[] wz = values("z_proj.weight"); // [M, H*D]
        float[] wdt = values("dt_proj.weight"); // [M, H]
        float[] dtBias = values("dt_bias");
        float[] aLog = values("A_log");
        float[] skip = values("D");
        float[] norm = values("norm.weight"); // [H, D]
        int model = wdt.length / heads;
        return new ConvCpuStep(parameters(), CONVS, st, heads, headDim, kvGroups) {
            private final float[] dt = new float[heads];
            private final float[] z = new float[heads * headDim];

            @Override
            void recur(float[] hidden, float[] out) {
                molt.teacher.cpu.Kernels.matVec(hidden, 0, wdt, model, heads, null, dt, 0);
                molt.teacher.cpu.Kernels.matVec(hidden, 0, wz, model, heads * d, null, z, 0);
                float[] x = conv[0];
                float[] b = conv[1];
                float[] c = conv[2];
                for (int h = 0; h < heads; h++) {
                    float step = molt.teacher.cpu.Kernels.softplus(dt[h] + dtBias[h]);
                    float decay = (float) Math.exp(step * -(float) Math.exp(aLog[h])); // exp(dt A)
                    int sh = h * d * d;
                    for (int kk = 0; kk < d; kk++) {
                        float bk = b[h * d + kk];
                        int row = sh + kk * d;
                        for (int vv = 0; vv < d; vv++) {
                            s[row + vv] = bk * (step * x[h * d + vv]) + decay * s[row + vv];
                        }
                    }
                    java.util.Arrays.fill(out, h * d, (h + 1) * d, 0f);
                    molt.teacher.cpu.Kernels.addMatVec(c, h * d, s, sh, d, d, d, out, h * d); // y = C^T S
                    for (int vv = 0; vv < d; vv++) {
                        int at = h * d + vv;
                        out[at] = (out[at] + skip[h] * x[at]) * molt.teacher.cpu.Kernels.silu(z[at]);
                    }
                    rmsPerHead(out, h, norm);
                }
            }
        };
    }
}
