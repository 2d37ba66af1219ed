package molt.student.core;

import ai.djl.ndarray.NDArray;
import molt.teacher.cpu.CpuStep;
import molt.teacher.cpu.Kernels;
import molt.teacher.nd.NativeArrays;

/**
 * {@link KeyDecay}'s recurrent step in plain Java, for one sequence (the GLA mixers' Java steps): per head,
 * S = diag(exp(gk)) S + k v^T and o = scale q^T S, on S [H, K, V] (K = V = D) copied from a prefilled state.
 */
public final class KeyDecayStep {
    private final int d;
    private final float[] s;

    private KeyDecayStep(int d, float[] s) {
        this.d = d;
        this.s = s;
    }

    /** From a prefilled state of batch 1 (null for a larger batch), for {@code heads} heads of dim d. */
    public static KeyDecayStep of(MatrixState st, int heads, int d) {
        NDArray held = st.matrix(); // [B, H, D, D]
        if (held != null && held.getShape().get(0) != 1) {
            return null;
        }
        return new KeyDecayStep(d, held == null ? new float[heads * d * d] : NativeArrays.values(held));
    }

    /**
     * Head h: q, k, v at qOff, kOff, vOff, log-decays gk [D]; writes scale q^T S (after the update) to
     * out[oOff .. oOff + D).
     */
    public void step(int h, float[] q, int qOff, float[] k, int kOff, float[] v, int vOff, float[] gk, float scale,
                     float[] out, int oOff) {
        int sh = h * d * d;
        for (int kk = 0; kk < d; kk++) {
            float decay = (float) Math.exp(gk[kk]);
            float kv = k[kOff + kk];
            int row = sh + kk * d;
            for (int vv = 0; vv < d; vv++) {
                s[row + vv] = kv * v[vOff + vv] + decay * s[row + vv];
            }
        }
        java.util.Arrays.fill(out, oOff, oOff + d, 0f);
        Kernels.addMatVec(q, qOff, s, sh, d, d, d, out, oOff);
        if (scale != 1f) {
            for (int j = oOff; j < oOff + d; j++) {
                out[j] *= scale;
            }
        }
    }

    /** GLA's log-decay logsigmoid(x) / 16 of x[off .. off + D) into gk. */
    public void logDecay(float[] x, int off, float[] gk) {
        for (int j = 0; j < d; j++) {
            gk[j] = -Kernels.softplus(-x[off + j]) / 16f; // logsigmoid(x) = -softplus(-x)
        }
    }

    /** S, 4 bytes per entry. */
    public long bytes() {
        return 4L * s.length;
    }

    /** What a mixer does for query head h around {@link #step}: its q, k and log-decays, the step, any norm after. */
    @FunctionalInterface
    public interface Head {
        /** Head h of one token; its key/value head's values start at {@code kv} in in.k and in.v. */
        void step(int h, CpuStep.Input in, int kv, float[] out);
    }

    /** The Java step that runs {@code head} for each of {@code heads} query heads over this S (h reads h / groups). */
    public CpuStep perHead(int heads, int kvGroups, Head head) {
        return new CpuStep() {
            @Override
            public void step(Input in, float[] out) {
                for (int h = 0; h < heads; h++) {
                    head.step(h, in, (h / kvGroups) * d, out);
                }
            }

            @Override
            public long bytes() {
                return KeyDecayStep.this.bytes();
            }
        };
    }
}
