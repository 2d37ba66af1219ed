package molt.teacher.testing;

import java.util.HashMap;
import java.util.Map;
import molt.teacher.LlamaConfig;
import molt.teacher.io.WeightSource;

/**
 * transformers' LlamaForCausalLM written as plain loops in double precision, independently of the NDArray code:
 * the reference the DJL model is checked against. One sequence at a time.
 */
public final class ReferenceLlama {
    private final LlamaConfig c;
    private final WeightSource w;
    private final Map<String, float[]> cache = new HashMap<>();

    /** Per-layer recordings, indexed [layer]. */
    public double[][][] hidden;       // [L][T][H]
    public double[][][][] q;          // [L][Hq][T][D] after RoPE
    public double[][][][] k;          // [L][Hkv][T][D] after RoPE
    public double[][][][] v;          // [L][Hkv][T][D]
    public double[][][][] attnOut;    // [L][T][Hq][D]
    public double[][][][] attnWeights; // [L][Hq][T][T]

    public ReferenceLlama(LlamaConfig config, WeightSource weights) {
        this.c = config;
        this.w = weights;
    }

    private float[] t(String name) {
        return cache.computeIfAbsent(name, w::readFloats);
    }

    private float[] layer(int i, String s) {
        return t("model.layers." + i + "." + s);
    }

    private float[] optLayer(int i, String s, boolean present) {
        return present ? layer(i, s) : null;
    }

    /** Logits [T][V] for one sequence; fills the per-layer recordings. */
    public double[][] forward(long[] tokens) {
        int T = tokens.length;
        int H = c.hiddenSize();
        int L = c.numLayers();
        int hq = c.numHeads();
        int hkv = c.numKvHeads();
        int d = c.headDim();
        hidden = new double[L][][];
        q = new double[L][][][];
        k = new double[L][][][];
        v = new double[L][][][];
        attnOut = new double[L][][][];
        attnWeights = new double[L][][][];
        float[] emb = t("model.embed_tokens.weight");
        double[][] x = new double[T][H];
        for (int p = 0; p < T; p++) {
            for (int j = 0; j < H; j++) {
                x[p][j] = emb[(int) tokens[p] * H + j];
            }
        }
        double[] invFreq = invFreq();
        for (int l = 0; l < L; l++) {
            hidden[l] = copy(x);
            double[][] xn = new double[T][];
            for (int p = 0; p < T; p++) {
                xn[p] = rms(x[p], layer(l, "input_layernorm.weight"));
            }
            double[][][] ql = new double[hq][T][d];
            double[][][] kl = new double[hkv][T][d];
            double[][][] vl = new double[hkv][T][d];
            for (int p = 0; p < T; p++) {
                double[] qp = lin(xn[p], layer(l, "self_attn.q_proj.weight"), optLayer(l, "self_attn.q_proj.bias", c.qkvBias()), hq * d);
                double[] kp = lin(xn[p], layer(l, "self_attn.k_proj.weight"), optLayer(l, "self_attn.k_proj.bias", c.qkvBias()), hkv * d);
                double[] vp = lin(xn[p], layer(l, "self_attn.v_proj.weight"), optLayer(l, "self_attn.v_proj.bias", c.qkvBias()), hkv * d);
                for (int h = 0; h < hq; h++) {
                    ql[h][p] = rope(slice(qp, h * d, d), p, invFreq);
                }
                for (int h = 0; h < hkv; h++) {
                    kl[h][p] = rope(slice(kp, h * d, d), p, invFreq);
                    vl[h][p] = slice(vp, h * d, d);
                }
            }
            q[l] = ql;
            k[l] = kl;
            v[l] = vl;
            double[][][] out = new double[T][hq][d];
            double[][][] wts = new double[hq][T][T];
            int groups = hq / hkv;
            for (int h = 0; h < hq; h++) {
                double[][] oh = causalAttention(ql[h], kl[h / groups], vl[h / groups], wts[h]); // [T][d]
                for (int i = 0; i < T; i++) {
                    out[i][h] = oh[i];
                }
            }
            attnOut[l] = out;
            attnWeights[l] = wts;
            for (int p = 0; p < T; p++) {
                double[] flat = new double[hq * d];
                for (int h = 0; h < hq; h++) {
                    System.arraycopy(out[p][h], 0, flat, h * d, d);
                }
                double[] o = lin(flat, layer(l, "self_attn.o_proj.weight"), optLayer(l, "self_attn.o_proj.bias", c.oBias()), H);
                for (int j = 0; j < H; j++) {
                    x[p][j] += o[j];
                }
                double[] xn2 = rms(x[p], layer(l, "post_attention_layernorm.weight"));
                int I = c.intermediateSize();
                double[] g = lin(xn2, layer(l, "mlp.gate_proj.weight"), optLayer(l, "mlp.gate_proj.bias", c.mlpBias()), I);
                double[] u = lin(xn2, layer(l, "mlp.up_proj.weight"), optLayer(l, "mlp.up_proj.bias", c.mlpBias()), I);
                double[] a = new double[I];
                for (int j = 0; j < I; j++) {
                    a[j] = g[j] / (1 + Math.exp(-g[j])) * u[j];
                }
                double[] dn = lin(a, layer(l, "mlp.down_proj.weight"), optLayer(l, "mlp.down_proj.bias", c.mlpBias()), H);
                for (int j = 0; j < H; j++) {
                    x[p][j] += dn[j];
                }
            }
        }
        float[] head = c.tieWordEmbeddings() ? emb : t("lm_head.weight");
        double[][] logits = new double[T][];
        for (int p = 0; p < T; p++) {
            logits[p] = lin(rms(x[p], t("model.norm.weight")), head, null, c.vocabSize());
        }
        return logits;
    }

    private double[] rms(double[] x, float[] w) {
        double ss = 0;
        for (double e : x) {
            ss += e * e;
        }
        double inv = 1 / Math.sqrt(ss / x.length + c.rmsNormEps());
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] * inv * w[i];
        }
        return y;
    }

    /**
     * One head's causal softmax attention in double precision: q, k, v [T][d] -> out [T][d], scores scaled by
     * 1/sqrt(d); the weights go into {@code weights} [T][T] when it is not null.
     */
    public static double[][] causalAttention(double[][] q, double[][] k, double[][] v, double[][] weights) {
        int t = q.length;
        int d = q[0].length;
        double[][] out = new double[t][d];
        for (int i = 0; i < t; i++) {
            double max = Double.NEGATIVE_INFINITY;
            double[] s = new double[i + 1];
            for (int j = 0; j <= i; j++) {
                double dot = 0;
                for (int e = 0; e < d; e++) {
                    dot += q[i][e] * k[j][e];
                }
                s[j] = dot / Math.sqrt(d);
                max = Math.max(max, s[j]);
            }
            double z = 0;
            for (int j = 0; j <= i; j++) {
                s[j] = Math.exp(s[j] - max);
                z += s[j];
            }
            for (int j = 0; j <= i; j++) {
                double w = s[j] / z;
                if (weights != null) {
                    weights[i][j] = w;
                }
                for (int e = 0; e < d; e++) {
                    out[i][e] += w * v[j][e];
                }
            }
        }
        return out;
    }

    private static double[] lin(double[] x, float[] wt, float[] b, int out) {
        int in = x.length;
        double[] y = new double[out];
        for (int o = 0; o < out; o++) {
            double acc = b == null ? 0 : b[o];
            for (int i = 0; i < in; i++) {
                acc += wt[o * in + i] * x[i];
            }
            y[o] = acc;
        }
        return y;
    }

    private double[] invFreq() {
        int half = c.headDim() / 2;
        double[] f = new double[half];
        for (int i = 0; i < half; i++) {
            f[i] = Math.pow(c.ropeTheta(), -2.0 * i / c.headDim());
        }
        LlamaConfig.RopeScaling s = c.ropeScaling();
        if (s == null) {
            return f;
        }
        for (int i = 0; i < half; i++) {
            if (s.type().equals("linear")) {
                f[i] = f[i] / s.factor();
                continue;
            }
            // Llama 3.1: wavelengths longer than original_max / low_freq_factor are slowed by the factor, shorter
            // than original_max / high_freq_factor kept; in between, a linear blend in original_max / wavelength.
            double wl = 2 * Math.PI / f[i];
            double ratio = s.originalMaxPositionEmbeddings() / wl;
            if (ratio < s.lowFreqFactor()) {
                f[i] = f[i] / s.factor();
            } else if (ratio <= s.highFreqFactor()) {
                double smooth = (ratio - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                f[i] = (1 - smooth) * f[i] / s.factor() + smooth * f[i];
            }
        }
        return f;
    }

    private static double[] rope(double[] x, int pos, double[] invFreq) {
        int half = x.length / 2;
        double[] y = new double[x.length];
        for (int i = 0; i < half; i++) {
            double a = pos * invFreq[i];
            double cos = Math.cos(a);
            double sin = Math.sin(a);
            y[i] = x[i] * cos - x[i + half] * sin;
            y[i + half] = x[i + half] * cos + x[i] * sin;
        }
        return y;
    }

    private static double[] slice(double[] x, int from, int n) {
        double[] y = new double[n];
        System.arraycopy(x, from, y, 0, n);
        return y;
    }

    private static double[][] copy(double[][] x) {
        double[][] y = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i].clone();
        }
        return y;
    }

    /** ||a - b|| / ||b|| in double. */
    public static double relErr(float[] a, double[] b) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < b.length; i++) {
            double diff = a[i] - b[i];
            num += diff * diff;
            den += b[i] * b[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-300));
    }

    /** {@link #relErr(float[], double[])} against float values. */
    public static double relErr(float[] a, float[] b) {
        double[] wide = new double[b.length];
        for (int i = 0; i < b.length; i++) {
            wide[i] = b[i];
        }
        return relErr(a, wide);
    }

    /** Flattens nested double arrays in row-major order. */
    public static double[] flat(Object nested) {
        java.util.List<Double> out = new java.util.ArrayList<>();
        flatten(nested, out);
        double[] r = new double[out.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = out.get(i);
        }
        return r;
    }

    private static void flatten(Object o, java.util.List<Double> out) {
        if (o instanceof double[] d) {
            for (double x : d) {
                out.add(x);
            }
        } else {
            for (Object e : (Object[]) o) {
                flatten(e, out);
            }
        }
    }
}
