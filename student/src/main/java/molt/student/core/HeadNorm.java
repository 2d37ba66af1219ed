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
}
