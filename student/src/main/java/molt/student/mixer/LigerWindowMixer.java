package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Map;
import molt.student.core.MatrixWindowState;
import molt.student.core.SlidingWindow;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import molt.teacher.nd.Scalars;

/**
 * {@code gla_liger_window}: Liger's hybrid output, 0.5 x sliding-window softmax attention (the w most recent tokens,
 * its own normalizer, scale 1/sqrt(D); {@link SlidingWindow}) + 0.5 x {@code gla_liger} ({@link LigerMixer}). No new
 * parameters. Decoding keeps GLA's state and the last w keys and values ({@link MatrixWindowState}).
 *
 * <p>Shapes: q, k, v [B, H, T, D]; output [B, H, T, D].
 */
public final class LigerWindowMixer extends BaseMixer {
    public static final String NAME = "gla_liger_window";

    private final LigerMixer liger;

    private final int heads;
    private final int headDim;

    public LigerWindowMixer(NDManager m, int heads, int headDim, MixerSettings settings) {
        super(NAME, m, settings, shapes(heads, headDim, 0, settings), MatrixWindowState::new);
        requireChunkAtLeastWindow();
        this.liger = new LigerMixer(m, heads, headDim, settings);
        this.heads = heads;
        this.headDim = headDim;
    }

    /** No parameters. */
    static Map<String, Shape> shapes(int heads, int headDim, int modelDim, MixerSettings settings) {
        return Map.of();
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDList g = liger.chunked(scope, in);
        NDArray window = SlidingWindow.softmax(scope, in.q(), in.k(), in.v(), settings.chunkSize(), settings.window());
        NDArray out = g.get(0).add(window).mul(Scalars.of(0.5f));
        MatrixWindowState st = withState
                ? MatrixWindowState.after(scope, g.get(1), in.k(), in.v(), settings.window()) : null;
        return new Output(out, st);
    }


    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        MatrixWindowState st = (MatrixWindowState) state;
        NDArray g = liger.step(scope, st, in);
        st.window().push(scope, in.k(), in.v(), settings.window(), null);
        return g.add(SlidingWindow.softmaxStep(scope, in.q(), st.window())).mul(Scalars.of(0.5f));
    }

    /** In plain Java: {@code gla_liger}'s Java step and the window's softmax, averaged (from copies of the state). */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        MatrixWindowState st = (MatrixWindowState) prefilled;
        molt.teacher.cpu.CpuStep g = liger.cpuStep(st, kvGroups);
        molt.student.core.WindowRing ring = molt.student.core.WindowRing.of(st.window(), heads, headDim,
                settings.window(), device);
        if (g == null || ring == null) {
            return null;
        }
        int d = headDim;
        return new molt.teacher.cpu.CpuStep() {
            private final float[] w = new float[heads * d];

            @Override
            public void step(Input in, float[] out) {
                g.step(in, out);
                ring.push(in.k, in.v, kvGroups, null);
                for (int h = 0; h < heads; h++) {
                    ring.softmax(in.q, h * d, h, w, h * d);
                }
                for (int j = 0; j < heads * d; j++) {
                    out[j] = (out[j] + w[j]) * 0.5f;
                }
            }

            @Override
            public long bytes() {
                return g.bytes() + ring.bytes();
            }
        };
    }
}
