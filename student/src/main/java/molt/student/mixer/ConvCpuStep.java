package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import java.util.Map;
import molt.student.core.ConvSsmState;
import molt.student.core.HeadNorm;
import molt.teacher.cpu.CpuStep;
import molt.teacher.cpu.Kernels;
import molt.teacher.nd.NativeArrays;

/**
 * The convolution-fronted mixers' recurrent form in plain Java, for one sequence ({@link ConvMixer}'s step): v, k
 * and q before RoPE (GQA heads repeated) each through its causal width-4 convolution and SiLU,
 * out_t = silu(bias + sum_{j<4} w[j] x_{t-3+j}), the window of the 3 inputs before moving on by the token; then the
 * family's recurrence and output ({@link #recur}) on S [H, D, D].
 *
 * <p>Layouts: conv weights [H, D, 4] and biases [H, D]; windows [H, 3, D] oldest first; S [H, K, V] (K = V = D);
 * the convolutions' outputs {@link #conv} [H * D] each, in the order v, k, q.
 */
abstract class ConvCpuStep implements CpuStep {
    final int heads;
    final int d;
    private final int groups;
    private final float[][] weight = new float[3][];
    private final float[][] bias = new float[3][];
    private final float[][] window = new float[3][];
    /** S [H, D, D]. */
    final float[] s;
    /** The convolutions' outputs v, k, q [H * D]. */
    final float[][] conv = new float[3][];
    private final float[][] src = new float[3][];

    /** From a prefilled state of batch 1 ({@link #batchOne} says whether it is one). */
    ConvCpuStep(Map<String, NDArray> params, String[] convs, ConvSsmState st, int heads, int d, int groups) {
        this.heads = heads;
        this.d = d;
        this.groups = groups;
        for (int i = 0; i < 3; i++) {
            weight[i] = NativeArrays.values(params.get(convs[i] + ".weight"));
            bias[i] = NativeArrays.values(params.get(convs[i] + ".bias"));
            window[i] = st.window(i) == null ? new float[heads * 3 * d] : NativeArrays.values(st.window(i));
            conv[i] = new float[heads * d];
            src[i] = new float[heads * d];
        }
        s = st.matrix() == null ? new float[heads * d * d] : NativeArrays.values(st.matrix());
    }

    /** True when the engine state holds one sequence (the only kind a Java step continues). */
    static boolean batchOne(ConvSsmState st) {
        return (st.matrix() == null || st.matrix().getShape().get(0) == 1)
                && (st.window(0) == null || st.window(0).getShape().get(0) == 1);
    }

    /** The family's recurrence on {@link #conv} and S, and its output for every head into out [H * D]. */
    abstract void recur(float[] hidden, float[] out);

    @Override
    public final void step(Input in, float[] out) {
        for (int h = 0; h < heads; h++) {
            System.arraycopy(in.v, (h / groups) * d, src[0], h * d, d);
            System.arraycopy(in.kRaw, (h / groups) * d, src[1], h * d, d);
        }
        System.arraycopy(in.qRaw, 0, src[2], 0, heads * d);
        for (int i = 0; i < 3; i++) {
            for (int h = 0; h < heads; h++) {
                for (int j = 0; j < d; j++) {
                    int c = h * d + j;
                    float acc = bias[i][c];
                    for (int t = 0; t < 3; t++) {
                        acc += window[i][(h * 3 + t) * d + j] * weight[i][c * 4 + t];
                    }
                    acc += src[i][c] * weight[i][c * 4 + 3];
                    conv[i][c] = Kernels.silu(acc);
                }
                int w0 = h * 3 * d; // the window moves on: [x_{t-2}, x_{t-1}, x_t]
                System.arraycopy(window[i], w0 + d, window[i], w0, 2 * d);
                System.arraycopy(src[i], h * d, window[i], w0 + 2 * d, d);
            }
        }
        recur(in.hidden, out);
    }

    /** Head h of x [H * D] in place: x / sqrt(mean(x^2) + eps) * gain[h, :]. */
    final void rmsPerHead(float[] x, int h, float[] gain) {
        HeadNorm.rmsInPlace(x, h * d, d, gain);
    }

    /** S and the three windows, 4 bytes each (as the engine's state counts them). */
    @Override
    public final long bytes() {
        return 4L * (s.length + 3L * heads * 3 * d);
    }
}
