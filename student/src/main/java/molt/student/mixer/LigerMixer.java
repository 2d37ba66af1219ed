package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Map;
import molt.student.core.KeyDecay;
import molt.student.core.MatrixState;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;

/**
 * {@code gla_liger}: Liger's parameter-free gated linear attention (Lan et al. 2025) on the {@link KeyDecay} core:
 * gk = logsigmoid(k) / 16 pooled from the key itself, q and k through a softmax over the head dimension as feature
 * map, scale 1, no output normalization. It has no new parameters: attention transfer has nothing to train for it
 * and reports so. ({@link LigerWindowMixer} adds Liger's sliding window.)
 *
 * <p>Shapes: q, k, v [B, H, T, D]; gk [B, H, T, D]; S [B, H, D, D].
 */
public final class LigerMixer extends BaseMixer {
    public static final String NAME = "gla_liger";

    private final int heads;
    private final int headDim;

    public LigerMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        super(NAME, m, settings, shapes(heads, headDim, 0, settings), MatrixState::new);
        this.heads = heads;
        this.headDim = headDim;
    }

    /** No parameters. */
    static Map<String, Shape> shapes(int heads, int headDim, int modelDim, MixerSettings settings) {
        return Map.of();
    }

    /** The output [B, H, T, D] and final state S [B, H, D, D] of the chunked form. */
    NDList chunked(NDManager scope, AttentionInput in) {
        return KeyDecay.chunked(scope, in.q().softmax(-1), in.k().softmax(-1), in.v(), KeyDecay.logDecay(in.k()), 1f,
                null, settings.chunkSize());
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDList r = chunked(scope, in);
        return new Output(r.get(0), withState ? MatrixState.after(scope, r.get(1)) : null);
    }


    /** One token from {@code state} (a {@link MatrixState}, or the window mixer's state that extends it). */
    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        return ((MatrixState) state).step(scope, in.q(), in.v(),
            s -> KeyDecay.step(in.q().softmax(-1), in.k().softmax(-1), in.v(), KeyDecay.logDecay(in.k()), 1f, s));
    }

    /**
     * In plain Java ({@link molt.student.core.KeyDecayStep}), from a copy of the prefilled S: q and k through a
     * softmax over the head dimension, gk = logsigmoid(k) / 16, scale 1.
     */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        molt.student.core.KeyDecayStep core = molt.student.core.KeyDecayStep.of((MatrixState) prefilled, heads,
                headDim);
        if (core == null) {
            return null;
        }
        int d = headDim;
        float[] q = new float[d];
        float[] k = new float[d];
        float[] gk = new float[d];
        return core.perHead(heads, kvGroups, (h, in, kv, out) -> {
            System.arraycopy(in.q, h * d, q, 0, d);
            System.arraycopy(in.k, kv, k, 0, d);
            molt.teacher.cpu.Kernels.softmax(q, 0, d);
            molt.teacher.cpu.Kernels.softmax(k, 0, d);
            core.logDecay(in.k, kv, gk);
            core.step(h, q, 0, k, 0, in.v, kv, gk, 1f, out, h * d);
        });
    }
}
