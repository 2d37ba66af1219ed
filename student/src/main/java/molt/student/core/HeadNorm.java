package molt.student.core;

import ai.djl.ndarray.NDArray;

/** Normalizations over each head's last axis (D), with the epsilon every mixer uses. */
public final class HeadNorm {
    /** Added under the square root so an all-zero head stays finite. */
    public static final float EPS = 1e-6f;

    private HeadNorm() {
    }

    /**
     * RMS norm per head: x / sqrt(mean_D(x^2) + eps) * gain, for x [B, H, T, D] and a gain that broadcasts against
     * it (e.g. [1, H, 1, D]) and already belongs to x's manager.
     */
    public static NDArray rms(NDArray x, NDArray gain) {
        NDArray ms = x.square().mean(new int[] {-1}, true); // [B, H, T, 1]
        return x.div(ms.add(EPS).sqrt()).mul(gain);
    }

    /** x / sqrt(sum_D(x^2) + eps): unit-length rows, for x [B, H, T, D]. */
    public static NDArray l2(NDArray x) {
        return x.div(x.square().sum(new int[] {-1}, true).add(EPS).sqrt());
    }

    /**
     * {@link #rms} in plain Java for one head, in place: x[off .. off + d) / sqrt(mean(x^2) + eps) * gain[off ..]
     * (the gain laid out [H, D] like x).
     */
    public static void rmsInPlace(float[] x, int off, int d, float[] gain) {
        double ms = 0;
        for (int j = 0; j < d; j++) {
            ms += (double) x[off + j] * x[off + j];
        }
        float inv = (float) (1.0 / Math.sqrt((float) (ms / d) + EPS));
        for (int j = 0; j < d; j++) {
            x[off + j] = x[off + j] * inv * gain[off + j];
        }
    }
}
