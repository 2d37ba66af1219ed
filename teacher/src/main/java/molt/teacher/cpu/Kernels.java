package molt.teacher.cpu;

/**
 * Plain-Java float kernels for decoding one token on the CPU, where every libtorch op costs microseconds of call
 * overhead whatever its size: at the quickstart's sizes a decoding step is hundreds of tiny ops, and these loops do
 * the same arithmetic without a native call. Sums run in float, in the order the loops give (not libtorch's), so
 * results agree with the engine's to float rounding, not bit for bit. The inner loops are simple enough for the
 * JIT to vectorize; {@link #matVec} reads four weight rows per pass over its output (measured on this machine:
 * about 8 GFLOP/s on one core against about 5 for one row per pass).
 *
 * <p>Layouts: vectors are float arrays with an offset; a matrix W^T [in, out] is row-major (the engine's stored
 * projection layout), a matrix W [rows, cols] for {@link #matVecRows} likewise.
 */
public final class Kernels {
    private Kernels() {
    }

    /** y[yOff .. yOff + out) = x[xOff .. xOff + in) W^T + b, for W^T [in, out] row-major; b [out] may be null. */
    public static void matVec(float[] x, int xOff, float[] wT, int in, int out, float[] b, float[] y, int yOff) {
        if (b == null) {
            java.util.Arrays.fill(y, yOff, yOff + out, 0f);
        } else {
            System.arraycopy(b, 0, y, yOff, out);
        }
        addMatVec(x, xOff, wT, 0, out, in, out, y, yOff);
    }

    /**
     * y[yOff .. yOff + out) += sum_i x[xOff + i] * W[i, 0 .. out) for i < in, row i of W starting at
     * w[wOff + i * stride] (a stride above {@code out} reads the leading columns of a wider matrix).
     */
    public static void addMatVec(float[] x, int xOff, float[] w, int wOff, int stride, int in, int out, float[] y,
                                 int yOff) {
        int i = 0;
        for (; i + 3 < in; i += 4) {
            float x0 = x[xOff + i];
            float x1 = x[xOff + i + 1];
            float x2 = x[xOff + i + 2];
            float x3 = x[xOff + i + 3];
            int r0 = wOff + i * stride;
            int r1 = r0 + stride;
            int r2 = r1 + stride;
            int r3 = r2 + stride;
            for (int o = 0; o < out; o++) {
                y[yOff + o] += x0 * w[r0 + o] + x1 * w[r1 + o] + x2 * w[r2 + o] + x3 * w[r3 + o];
            }
        }
        for (; i < in; i++) {
            axpy(x[xOff + i], w, wOff + i * stride, y, yOff, out);
        }
    }

    /** y[o] = W[o, :] . x for W [out, in] row-major (a tied LM head: the embedding table itself). */
    public static void matVecRows(float[] w, int out, int in, float[] x, float[] y) {
        for (int o = 0; o < out; o++) {
            y[o] = dot(w, o * in, x, 0, in);
        }
    }

    /** a[aOff ..] . b[bOff ..] over n entries, with eight partial sums. */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        float s0 = 0;
        float s1 = 0;
        float s2 = 0;
        float s3 = 0;
        float s4 = 0;
        float s5 = 0;
        float s6 = 0;
        float s7 = 0;
        int i = 0;
        for (; i + 7 < n; i += 8) {
            s0 += a[aOff + i] * b[bOff + i];
            s1 += a[aOff + i + 1] * b[bOff + i + 1];
            s2 += a[aOff + i + 2] * b[bOff + i + 2];
            s3 += a[aOff + i + 3] * b[bOff + i + 3];
            s4 += a[aOff + i + 4] * b[bOff + i + 4];
            s5 += a[aOff + i + 5] * b[bOff + i + 5];
            s6 += a[aOff + i + 6] * b[bOff + i + 6];
            s7 += a[aOff + i + 7] * b[bOff + i + 7];
        }
        for (; i < n; i++) {
            s0 += a[aOff + i] * b[bOff + i];
        }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    }

    /** y[yOff ..] += alpha * x[xOff ..] over n entries. */
    public static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) {
            y[yOff + i] += alpha * x[xOff + i];
        }
    }

    /** RMSNorm: out = x * 1/sqrt(mean(x^2) + eps) * w over n = w.length entries (the mean accumulated in double). */
    public static void rmsNorm(float[] x, float[] w, float eps, float[] out) {
        int n = w.length;
        double ss = 0;
        for (int i = 0; i < n; i++) {
            ss += (double) x[i] * x[i];
        }
        float inv = (float) (1.0 / Math.sqrt((float) (ss / n) + eps));
        for (int i = 0; i < n; i++) {
            out[i] = x[i] * inv * w[i];
        }
    }

    /** The SwiGLU gate in place: gate[i] = silu(gate[i]) * up[i] over n entries. */
    public static void siluMul(float[] gate, float[] up, int n) {
        for (int i = 0; i < n; i++) {
            gate[i] = silu(gate[i]) * up[i];
        }
    }

    /** sigmoid(x) = 1 / (1 + e^-x). */
    public static float sigmoid(float x) {
        return (float) (1.0 / (1.0 + Math.exp(-x)));
    }

    /** silu(x) = x sigmoid(x). */
    public static float silu(float x) {
        return (float) (x / (1.0 + Math.exp(-x)));
    }

    /** softplus(x) = log(1 + e^x), as max(x, 0) + log(1 + e^-|x|) so that e^x never overflows. */
    public static float softplus(float x) {
        return (float) (Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))));
    }

    /**
     * Rotary embedding of {@code heads} heads of dim d in place (rotate-half layout), with cos and the signed sine
     * table (-sin, sin) of one position, as {@code Rope} makes them: x' = x cos + (x2, x1) sin.
     */
    public static void rope(float[] x, int heads, int d, float[] cos, float[] signedSin) {
        int half = d / 2;
        for (int h = 0; h < heads; h++) {
            int o = h * d;
            for (int i = 0; i < half; i++) {
                float x1 = x[o + i];
                float x2 = x[o + half + i];
                x[o + i] = x1 * cos[i] + x2 * signedSin[i];
                x[o + half + i] = x2 * cos[half + i] + x1 * signedSin[half + i];
            }
        }
    }

    /** Softmax in place over x[off .. off + n); returns nothing, the largest entry subtracted first. */
    public static void softmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        float sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int i = 0; i < n; i++) {
            x[off + i] *= inv;
        }
    }
}
