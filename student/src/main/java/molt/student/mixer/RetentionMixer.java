package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.student.core.HeadNorm;
import molt.student.core.MatrixState;
import molt.student.core.ScalarDecay;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;

/**
 * {@code retention} (RetNet, Sun et al. 2023): linear attention with a fixed decay per head,
 * S_t = gamma_h S_{t-1} + k_t v_t^T, o_t = q_t^T S_t / sqrt(D), gamma_h = 1 - 2^(-5-h) for head h, followed by
 * RetNet's output normalization: an RMS norm over each head's D outputs. RetNet's parallel-form rescalings of the
 * decay and score matrices cancel under that norm, so the recurrent and chunked forms here compute the same
 * function. The decay has no parameters; attention transfer trains the norm's per-head, per-dimension gain
 * (started at 1), which sets each head's output scale to match the teacher's.
 *
 * <p>Shapes: q, k, v [B, H, T, D] (after RoPE and GQA); state S [B, H, D, D]; norm weight [H, D].
 */
public final class RetentionMixer extends BaseMixer {
    public static final String NAME = "retention";

    private final NDArray normWeight;
    private final float[] logDecay;

    public RetentionMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        super(NAME, m, settings, shapes(heads, headDim, 0, settings), MatrixState::new);
        this.normWeight = constant("output_norm.weight", m, 1f);
        this.logDecay = new float[heads];
        for (int h = 0; h < heads; h++) {
            logDecay[h] = (float) logDecay(h);
        }
    }

    /** The parameters' names and shapes. */
    static Map<String, Shape> shapes(int heads, int headDim, int modelDim, MixerSettings settings) {
        Map<String, Shape> p = new LinkedHashMap<>();
        p.put("output_norm.weight", new Shape(heads, headDim));
        return p;
    }

    /** log(gamma_h) per head. */
    public static double logDecay(int head) {
        return Math.log(1 - Math.pow(2, -5 - head));
    }

    /** Log-decays [B, H, T], created in {@code scope}. */
    private NDArray decays(NDManager scope, long b, long t) {
        return molt.teacher.nd.NativeArrays.floats(scope, logDecay, new Shape(1, logDecay.length, 1)) // [1, H, 1]
                .broadcast(new Shape(b, logDecay.length, t)); // [B, H, T]
    }

    /** Per-head RMS norm over D with the learned gain; o [B, H, T, D]. */
    private NDArray norm(NDArray o) {
        NDArray w = normWeight.expandDims(1); // [H, 1, D]
        w.attach(o.getManager());
        return HeadNorm.rms(o, w);
    }

    private static float scale(NDArray q) {
        return (float) (1.0 / Math.sqrt(q.getShape().get(3)));
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        Shape s = in.q().getShape();
        NDList r = ScalarDecay.chunked(scope, in.q(), in.k(), in.v(), decays(scope, s.get(0), s.get(2)), scale(in.q()),
                null, settings.chunkSize());
        return new Output(norm(r.get(0)), withState ? MatrixState.after(scope, r.get(1)) : null);
    }


    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        NDArray q = in.q();
        NDArray o = ((MatrixState) state).step(scope, q, in.v(),
            s -> ScalarDecay.step(q, in.k(), in.v(), decays(scope, q.getShape().get(0), 1), scale(q), s));
        return norm(o);
    }

    /**
     * In plain Java, from a copy of the prefilled S: S = gamma_h S + k v^T, o = q^T S / sqrt(D), then the per-head
     * RMS norm with its gain (q, k after RoPE; query head h reads key/value head h / groups).
     */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        NDArray held = ((MatrixState) prefilled).matrix(); // [B, H, D, D]
        if (held != null && held.getShape().get(0) != 1) {
            return null;
        }
        float[] gain = molt.teacher.nd.NativeArrays.values(normWeight); // [H, D]
        int heads = logDecay.length;
        int d = gain.length / heads;
        float[] s = held == null ? new float[heads * d * d] : molt.teacher.nd.NativeArrays.values(held);
        float scale = (float) (1.0 / Math.sqrt(d));
        return new molt.teacher.cpu.CpuStep() {
            @Override
            public void step(Input in, float[] out) {
                for (int h = 0; h < heads; h++) {
                    int kv = (h / kvGroups) * d;
                    int sh = h * d * d;
                    float decay = (float) Math.exp(logDecay[h]);
                    for (int kk = 0; kk < d; kk++) {
                        float k = in.k[kv + kk];
                        int row = sh + kk * d;
                        for (int vv = 0; vv < d; vv++) {
                            s[row + vv] = k * in.v[kv + vv] + decay * s[row + vv];
                        }
                    }
                    java.util.Arrays.fill(out, h * d, (h + 1) * d, 0f);
                    molt.teacher.cpu.Kernels.addMatVec(in.q, h * d, s, sh, d, d, d, out, h * d); // q^T S
                    for (int j = h * d; j < (h + 1) * d; j++) {
                        out[j] *= scale;
                    }
                    HeadNorm.rmsInPlace(out, h * d, d, gain);
                }
            }

            @Override
            public long bytes() {
                return 4L * s.length;
            }
        };
    }
}
