package molt.student.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import molt.teacher.nd.Scalars;

/**
 * A low-rank adapter on one frozen linear layer {@code y = x W^T + b} with W of shape [out, in]:
 * {@code y' = y + (alpha / r) * dropout(x) A^T B^T}, A [r, in], B [out, r] (PEFT's layout and names
 * {@code lora_A.weight}, {@code lora_B.weight}). A starts uniform in +-1/sqrt(in) (PEFT's kaiming-uniform with
 * a = sqrt(5)), B starts at zero, so a fresh adapter changes nothing. Merging folds the update into W in double
 * precision: {@code W' = W + (alpha / r) B A}.
 *
 * <p>Shapes: x [..., in] -> delta [..., out].
 */
public final class LoraAdapter {
    private final int in;
    private final int out;
    private final LoraConfig config;
    private final NDArray a;
    private final NDArray b;
    private boolean enabled = true;

    private LoraAdapter(LoraConfig config, int in, int out, NDArray a, NDArray b) {
        this.config = config;
        this.in = in;
        this.out = out;
        this.a = a;
        this.b = b;
    }

    /** A fresh adapter whose parameters live in {@code manager} and require gradients. */
    public static LoraAdapter create(NDManager manager, LoraConfig config, int in, int out, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float bound = (float) (1.0 / Math.sqrt(in));
        float[] av = new float[config.rank() * in];
        for (int i = 0; i < av.length; i++) {
            av[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
        }
        NDArray a = molt.teacher.nd.NativeArrays.floats(manager, av, new Shape(config.rank(), in));
        NDArray b = manager.zeros(new Shape(out, config.rank()), DataType.FLOAT32);
        a.setRequiresGradient(true);
        b.setRequiresGradient(true);
        return new LoraAdapter(config, in, out, a, b);
    }

    /** An adapter from stored A [r, in] and B [out, r] values. */
    public static LoraAdapter fromValues(NDManager manager, LoraConfig config, int in, int out, float[] aValues,
                                         float[] bValues) {
        if (aValues.length != config.rank() * in || bValues.length != out * config.rank()) {
            throw new IllegalArgumentException("lora values: expected A [" + config.rank() + ", " + in + "] and B ["
                    + out + ", " + config.rank() + "], found " + aValues.length + " and " + bValues.length
                    + " elements");
        }
        NDArray a = molt.teacher.nd.NativeArrays.floats(manager, aValues, new Shape(config.rank(), in));
        NDArray b = molt.teacher.nd.NativeArrays.floats(manager, bValues, new Shape(out, config.rank()));
        a.setRequiresGradient(true);
        b.setRequiresGradient(true);
        return new LoraAdapter(config, in, out, a, b);
    }

    /**
     * The low-rank update for input x [..., in], as [..., out]; it belongs to x's manager (the first operand), and
     * the parameters' temporaries go to {@code scope}. With dropout > 0 and
     * {@code training}, each input element is zeroed with probability p and the rest scaled by 1 / (1 - p), using
     * {@code rng} so runs repeat.
     */
    public NDArray delta(NDManager scope, NDArray x, boolean training, SplittableRandom rng) {
        NDArray input = x;
        if (training && config.dropout() > 0) {
            float[] keep = new float[Math.toIntExact(x.size())];
            float scale = (float) (1.0 / (1.0 - config.dropout()));
            for (int i = 0; i < keep.length; i++) {
                keep[i] = rng.nextDouble() < config.dropout() ? 0f : scale;
            }
            input = x.mul(molt.teacher.nd.NativeArrays.floats(scope, keep, x.getShape()));
        }
        NDArray aT = a.transpose(); // [in, r]
        NDArray bT = b.transpose(); // [r, out]
        aT.attach(scope); // results belong to the first operand's manager: move them out of the parameters' one
        bT.attach(scope);
        NDArray low = input.matMul(aT); // [..., r]
        return low.matMul(bT).mul(Scalars.of((float) config.scaling())); // [..., out]
    }

    /** Returns {@code w + (alpha / r) B A} for a row-major W [out, in], accumulated in double. */
    public float[] mergeInto(float[] w) {
        return merged(w, false);
    }

    /**
     * Returns {@code W^T + (alpha / r) (B A)^T} for a row-major W^T [in, out] (the engine's stored layout),
     * accumulated in double.
     */
    public float[] mergeIntoTransposed(float[] wT) {
        return merged(wT, true);
    }

    /** W [out, in] (or W^T [in, out] when {@code transposed}) plus the scaled update, entry by entry. */
    private float[] merged(float[] w, boolean transposed) {
        if (w.length != (long) out * in) {
            throw new IllegalArgumentException("merge: expected " + (transposed ? "W^T [" + in + ", " + out
                    : "W [" + out + ", " + in) + "], found " + w.length + " elements");
        }
        float[] av = molt.teacher.nd.NativeArrays.values(a); // [r, in]
        float[] bv = molt.teacher.nd.NativeArrays.values(b); // [out, r]
        int r = config.rank();
        double s = config.scaling();
        float[] merged = new float[w.length];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                double acc = 0;
                for (int k = 0; k < r; k++) {
                    acc += (double) bv[o * r + k] * av[k * in + i];
                }
                int at = transposed ? i * out + o : o * in + i;
                merged[at] = (float) (w[at] + s * acc);
            }
        }
        return merged;
    }

    /** Parameters by PEFT name suffix: {@code lora_A.weight} and {@code lora_B.weight}. */
    public Map<String, NDArray> parameters() {
        Map<String, NDArray> p = new LinkedHashMap<>();
        p.put("lora_A.weight", a);
        p.put("lora_B.weight", b);
        return p;
    }

    public boolean enabled() {
        return enabled;
    }

    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    public LoraConfig config() {
        return config;
    }

    public int in() {
        return in;
    }

    public int out() {
        return out;
    }
}
