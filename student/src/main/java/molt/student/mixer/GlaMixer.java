package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import molt.student.core.HeadNorm;
import molt.student.core.KeyDecay;
import molt.student.core.MatrixState;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;

/**
 * {@code gla}: gated linear attention with a data-dependent decay per key dimension (GLA, Yang et al. 2024), on the
 * shared {@link KeyDecay} core: S_t = diag(exp(gk_t)) S_{t-1} + k_t v_t^T, o_t = q_t^T S_t / sqrt(D), then a per-head
 * RMS norm with a learned gain [H, D] (GLA's output norm).
 *
 * <p>gk = logsigmoid(k W1 W2 + b) / 16 with a per-head low-rank gate (rank 16; W1 [H, D, 16], W2 [H, 16, D],
 * b [H, D]). The gate reads the key (after RoPE) rather than the layer input as GLA does, since the key is a linear
 * map of that input and is what the student layer hands every mixer. W2 and b start at 0, so every dimension starts
 * at decay sigmoid(0)^(1/16) = 0.958 per token. New parameters: W1, W2, b and the gain. ({@link LigerMixer} is the
 * parameter-free form on the same core.)
 *
 * <p>Shapes: q, k, v [B, H, T, D]; gk [B, H, T, D]; S [B, H, D, D].
 */
public final class GlaMixer extends BaseMixer {
    public static final String NAME = "gla";
    static final int RANK = 16;

    private GlaMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        super(NAME, m, settings, shapes(heads, headDim, 0, settings), MatrixState::new);
        SplittableRandom r = new SplittableRandom(1234);
        float[] w1 = new float[heads * headDim * RANK];
        double bound = 1.0 / Math.sqrt(headDim);
        for (int i = 0; i < w1.length; i++) {
            w1[i] = (float) ((r.nextDouble() * 2 - 1) * bound);
        }
        param("gate_down.weight", molt.teacher.nd.NativeArrays.floats(m, w1, shape("gate_down.weight")));
        param("gate_up.weight", m.zeros(shape("gate_up.weight")));
        param("gate_up.bias", m.zeros(shape("gate_up.bias")));
        constant("output_norm.weight", m, 1f);
    }

    /** GLA with its low-rank gate at the initialization above; parameters live in {@code m}. */
    public static GlaMixer learned(NDManager m, int heads, int headDim, MixerSettings s) {
        return new GlaMixer(m, heads, headDim, s);
    }

    /** The parameters' names and shapes, in creation order. */
    static Map<String, Shape> shapes(int heads, int headDim, int modelDim, MixerSettings settings) {
        Map<String, Shape> p = new LinkedHashMap<>();
        p.put("gate_down.weight", new Shape(heads, headDim, RANK));
        p.put("gate_up.weight", new Shape(heads, RANK, headDim));
        p.put("gate_up.bias", new Shape(heads, 1, headDim));
        p.put("output_norm.weight", new Shape(heads, 1, headDim));
        return p;
    }

    /** A parameter [H, ...] as [1, H, ...] in {@code owner}'s manager. */
    private NDArray p(String name, NDArray owner) {
        NDArray a = parameters().get(name).expandDims(0); // [1, H, ...]
        a.attach(owner.getManager());
        return a;
    }

    /** Per-dimension log-decays [B, H, T, D] from the key. */
    private NDArray gate(NDArray k) {
        NDArray low = k.matMul(p("gate_down.weight", k)); // [B, H, T, 16]
        return KeyDecay.logDecay(low.matMul(p("gate_up.weight", k)).add(p("gate_up.bias", k))); // [B, H, T, D]
    }

    private static float scale(NDArray q) {
        return (float) (1.0 / Math.sqrt(q.getShape().get(3)));
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDList r = KeyDecay.chunked(scope, in.q(), in.k(), in.v(), gate(in.k()), scale(in.q()), null,
                settings.chunkSize());
        MatrixState st = withState ? MatrixState.after(scope, r.get(1)) : null;
        return new Output(HeadNorm.rms(r.get(0), p("output_norm.weight", r.get(0))), st);
    }


    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        NDArray q = in.q();
        NDArray o = ((MatrixState) state).step(scope, q, in.v(),
            s -> KeyDecay.step(q, in.k(), in.v(), gate(in.k()), scale(q), s));
        return HeadNorm.rms(o, p("output_norm.weight", o));
    }

    /**
     * In plain Java ({@link molt.student.core.KeyDecayStep}), from a copy of the prefilled S: gk = logsigmoid(k W1
     * W2 + b) / 16 per head, o = q^T S / sqrt(D), then the per-head RMS norm with its gain.
     */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        float[] gain = molt.teacher.nd.NativeArrays.values(parameters().get("output_norm.weight")); // [H, 1, D]
        float[] w1 = molt.teacher.nd.NativeArrays.values(parameters().get("gate_down.weight")); // [H, D, R]
        float[] w2 = molt.teacher.nd.NativeArrays.values(parameters().get("gate_up.weight")); // [H, R, D]
        float[] b = molt.teacher.nd.NativeArrays.values(parameters().get("gate_up.bias")); // [H, 1, D]
        long[] shape = parameters().get("gate_down.weight").getShape().getShape(); // [H, D, R]
        int heads = Math.toIntExact(shape[0]);
        int dim = Math.toIntExact(shape[1]);
        molt.student.core.KeyDecayStep core = molt.student.core.KeyDecayStep.of((MatrixState) prefilled, heads, dim);
        if (core == null) {
            return null;
        }
        float scale = (float) (1.0 / Math.sqrt(dim));
        float[] low = new float[RANK];
        float[] pre = new float[dim];
        float[] gk = new float[dim];
        return core.perHead(heads, kvGroups, (h, in, kv, out) -> {
            java.util.Arrays.fill(low, 0f);
            molt.teacher.cpu.Kernels.addMatVec(in.k, kv, w1, h * dim * RANK, RANK, dim, RANK, low, 0);
            System.arraycopy(b, h * dim, pre, 0, dim);
            molt.teacher.cpu.Kernels.addMatVec(low, 0, w2, h * RANK * dim, dim, RANK, dim, pre, 0);
            core.logDecay(pre, 0, gk);
            core.step(h, in.q, h * dim, in.k, kv, in.v, kv, gk, scale, out, h * dim);
            molt.student.core.HeadNorm.rmsInPlace(out, h * dim, dim, gain);
        });
    }
}
