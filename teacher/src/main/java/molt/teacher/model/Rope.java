package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import molt.teacher.LlamaConfig;
import molt.teacher.nd.NativeArrays;
import molt.teacher.nd.Ops;

/**
 * Rotary position embeddings in the rotate-half layout of transformers' Llama: for head dim D, frequencies
 * inv_freq[i] = theta^(-2i/D), i < D/2, optionally rescaled ({@code linear}: divided by the factor;
 * {@code llama3}: long wavelengths divided by the factor, short ones kept, a smooth blend between), and
 * x' = x * cos + rotate_half(x) * sin with cos/sin of (position * inv_freq) repeated over both halves.
 *
 * <p>Shapes: x [B, H, T, D]; cos and sin [T, D].
 */
public final class Rope {
    private final float[] invFreq;
    private final int headDim;

    public Rope(LlamaConfig config) {
        this.headDim = config.headDim();
        double[] f = inverseFrequencies(config);
        this.invFreq = new float[f.length];
        for (int i = 0; i < f.length; i++) {
            this.invFreq[i] = (float) f[i];
        }
    }

    /** inv_freq [D/2] in double, after the config's scaling. */
    public static double[] inverseFrequencies(LlamaConfig c) {
        int half = c.headDim() / 2;
        double[] f = new double[half];
        for (int i = 0; i < half; i++) {
            f[i] = 1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / c.headDim());
        }
        LlamaConfig.RopeScaling s = c.ropeScaling();
        if (s == null) {
            return f;
        }
        if (s.type().equals("linear")) {
            for (int i = 0; i < half; i++) {
                f[i] /= s.factor();
            }
            return f;
        }
        // llama3: transformers' _compute_llama3_parameters.
        double lowFreqWavelen = s.originalMaxPositionEmbeddings() / s.lowFreqFactor();
        double highFreqWavelen = s.originalMaxPositionEmbeddings() / s.highFreqFactor();
        for (int i = 0; i < half; i++) {
            double wavelen = 2 * Math.PI / f[i];
            if (wavelen > lowFreqWavelen) {
                f[i] = f[i] / s.factor();
            } else if (wavelen >= highFreqWavelen) {
                double smooth = (s.originalMaxPositionEmbeddings() / wavelen - s.lowFreqFactor())
                        / (s.highFreqFactor() - s.lowFreqFactor());
                f[i] = (1 - smooth) * f[i] / s.factor() + smooth * f[i];
            }
        }
        return f;
    }

    /** cos [T, D] for positions start..start+T-1, created in {@code m}. */
    public NDArray cos(NDManager m, long start, int t) {
        return table(m, start, t, true);
    }

    /**
     * The signed sine table [T, D] for positions start..start+T-1, created in {@code m}: (-sin, sin) over the two
     * halves, the form {@link #apply} takes (the sign of rotate_half moved into the table).
     */
    public NDArray sin(NDManager m, long start, int t) {
        return table(m, start, t, false);
    }

    private NDArray table(NDManager m, long start, int t, boolean cos) {
        float[] v = new float[t * headDim];
        float[] c = new float[headDim];
        float[] s = new float[headDim];
        for (int p = 0; p < t; p++) {
            row(start + p, c, s);
            System.arraycopy(cos ? c : s, 0, v, p * headDim, headDim);
        }
        return NativeArrays.floats(m, v, new Shape(t, headDim));
    }

    /**
     * One position's rows of the tables in plain Java: cos [D] and the signed sine (-sin, sin) [D], the values
     * {@link #cos} and {@link #sin} hold for it.
     */
    public void row(long position, float[] cos, float[] sin) {
        int half = headDim / 2;
        for (int i = 0; i < half; i++) {
            // As transformers does: inv_freq and the angle position * inv_freq in fp32, cos/sin of that angle.
            float a = (float) position * invFreq[i];
            float c = (float) Math.cos(a);
            float s = (float) Math.sin(a);
            cos[i] = c;
            cos[half + i] = c;
            sin[i] = -s;
            sin[half + i] = s;
        }
    }

    /** The inverse rotation, x * cos - rotate_half(x) * sin: recovers the projection from a rotated q or k. */
    public static NDArray unapply(NDArray x, NDArray cos, NDArray sin) {
        return apply(x, cos, sin.neg());
    }

    /**
     * x * cos + rotate_half(x) * sin for x [B, H, T, D], with {@code sin} the signed table of {@link #sin}:
     * rotate_half(x) * sin = (-x2, x1) * (sin, sin) = (x2, x1) * (-sin, sin), bit for bit (a product's sign does not
     * change its rounding), one op fewer. The result belongs to x's manager.
     */
    public static NDArray apply(NDArray x, NDArray cos, NDArray sin) {
        return apply(x, cos, sin, x.getShape().get(3), false);
    }

    /**
     * {@link #apply} for head dim {@code d}; with {@code inPlace} (no backward runs through it) the sine's product
     * and the sum go into the step's own temporaries: the same ops, two arrays fewer.
     */
    public static NDArray apply(NDArray x, NDArray cos, NDArray sin, long d, boolean inPlace) {
        NDList halves = Ops.split(x, new long[] {d / 2, d - d / 2}, 3); // views x1, x2
        NDArray swapped = Ops.concat(halves.get(1), halves.get(0), 3); // [B, H, T, D]: (x2, x1)
        return inPlace ? x.mul(cos).addi(swapped.muli(sin)) : x.mul(cos).add(swapped.mul(sin));
    }
}
