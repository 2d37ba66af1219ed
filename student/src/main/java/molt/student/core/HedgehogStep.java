package molt.student.core;

import ai.djl.ndarray.NDArray;
import molt.teacher.cpu.CpuStep;
import molt.teacher.cpu.Kernels;
import molt.teacher.nd.NativeArrays;

/**
 * The Hedgehog mixers' recurrent form in plain Java, for one sequence ({@link CpuStep}): {@code hedgehog}
 * (window 0) and {@code hedgehog_window}. Per query head h, with phi the feature map of
 * {@link HedgehogFeatureMap} and the state S [2F, D], z [2F] of {@link HedgehogState}:
 *
 * <pre>
 *   hedgehog:         S += phi_k(k) v^T, z += phi_k(k);  y = phi_q(q) S / phi_q(q).z
 *   hedgehog_window:  the window takes k, v (its oldest token, once more than w, joins S and z);
 *                     e_s = g_h exp(q.k_s / sqrt(D) - max_s), s in the window;
 *                     y = (sum_s e_s v_s + phi_q(q) S) / (sum_s e_s + phi_q(q).z)
 * </pre>
 *
 * the same function as {@link LinearAttention#step} and {@link WindowedLinearAttention#step}. Keys and values come
 * before the GQA repeat; the state holds them per query head, as the engine's state does.
 *
 * <p>Layouts: feature maps W [H, D, F]; S [H, 2F, D]; z [H, 2F]; the window a ring of w slots [H, w, D] per array.
 */
public final class HedgehogStep implements CpuStep {
    private final int heads;
    private final int d;
    private final int f;
    private final int groups;
    private final float[] wq;
    private final float[] wk;
    /** g_h = sigmoid(f_h) [H]; null without a window. */
    private final float[] gate;
    private final float[] s;
    private final float[] z;
    /** The window's keys and values; null without a window. */
    private WindowRing ring;
    private final float[] fq;
    private final float[] fk;

    private HedgehogStep(int heads, int d, int f, int groups, float[] wq, float[] wk, float[] gate, float[] s,
                         float[] z) {
        this.heads = heads;
        this.d = d;
        this.f = f;
        this.groups = groups;
        this.wq = wq;
        this.wk = wk;
        this.gate = gate;
        this.s = s;
        this.z = z;
        this.fq = new float[2 * f];
        this.fk = new float[2 * f];
    }

    /**
     * The step continuing from a prefilled engine state of batch 1 (null for a larger batch), with the feature maps
     * wq, wk [H, D, F], the window's weights g [H] (null and window 0 for {@code hedgehog}) and {@code groups} query
     * heads per key/value head.
     */
    public static HedgehogStep of(HedgehogState st, NDArray wq, NDArray wk, float[] gate, int window, int groups) {
        long[] shape = wq.getShape().getShape(); // [H, D, F]
        int heads = Math.toIntExact(shape[0]);
        int d = Math.toIntExact(shape[1]);
        int f = Math.toIntExact(shape[2]);
        float[] s = new float[heads * 2 * f * d];
        float[] z = new float[heads * 2 * f];
        if (st.linearState() != null) {
            if (st.linearState().getShape().get(0) != 1) {
                return null;
            }
            s = NativeArrays.values(st.linearState()); // [1, H, 2F, D]
            z = NativeArrays.values(st.normalizer()); // [1, H, 2F, 1]
        }
        HedgehogStep step = new HedgehogStep(heads, d, f, groups, NativeArrays.values(wq), NativeArrays.values(wk),
                gate, s, z);
        if (window > 0) {
            step.ring = WindowRing.of(st.window(), heads, d, window, wq.getDevice());
            if (step.ring == null) {
                return null;
            }
        }
        return step;
    }

    /** phi(x) of head h into {@code out} [2F]: [softmax(x W_h), softmax(-x W_h)], each entry at least the clamp. */
    private void phi(float[] x, int xOff, float[] w, int h, float[] out) {
        java.util.Arrays.fill(out, 0, f, 0f);
        Kernels.addMatVec(x, xOff, w, h * d * f, f, d, f, out, 0); // x W_h [F]
        for (int i = 0; i < f; i++) {
            out[f + i] = -out[i];
        }
        Kernels.softmax(out, 0, f);
        Kernels.softmax(out, f, f);
        for (int i = 0; i < 2 * f; i++) {
            out[i] = Math.max(out[i], HedgehogFeatureMap.CLAMP);
        }
    }

    /** S_h += fk v^T and z_h += fk, for v at v[vOff ..]. */
    private void add(int h, float[] v, int vOff) {
        int sh = h * 2 * f * d;
        for (int i = 0; i < 2 * f; i++) {
            Kernels.axpy(fk[i], v, vOff, s, sh + i * d, d);
            z[h * 2 * f + i] += fk[i];
        }
    }

    @Override
    public void step(Input in, float[] out) {
        float[] q = in.q;
        if (ring != null) { // the oldest token leaves the window for the linear term, then the new one joins it
            ring.push(in.k, in.v, groups, (h, keys, values, off) -> {
                phi(keys, off, wk, h, fk);
                add(h, values, off);
            });
        }
        for (int h = 0; h < heads; h++) {
            int o = h * d;
            java.util.Arrays.fill(out, o, o + d, 0f);
            float den = 0;
            if (ring == null) {
                phi(in.k, (h / groups) * d, wk, h, fk);
                add(h, in.v, (h / groups) * d);
            } else {
                den = ring.attend(q, o, h, gate[h], out, o); // sum_s e_s v_s into out; sum_s e_s
            }
            phi(q, o, wq, h, fq);
            Kernels.addMatVec(fq, 0, s, h * 2 * f * d, d, 2 * f, d, out, o); // + phi(q) S [D]
            divide(out, o, den + Kernels.dot(fq, 0, z, h * 2 * f, 2 * f));
        }
    }

    private void divide(float[] out, int o, float den) {
        for (int j = 0; j < d; j++) {
            out[o + j] /= den;
        }
    }

    /** S and z, plus the window's keys and values as the engine counts them (the n tokens held), 4 bytes each. */
    @Override
    public long bytes() {
        return 4L * (s.length + z.length) + (ring == null ? 0 : ring.bytes());
    }
}
