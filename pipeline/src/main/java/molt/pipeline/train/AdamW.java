package molt.pipeline.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov and Hutter): m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, w -= lr (m^ / (sqrt(v^) + eps) + wd w)
 * with bias-corrected m^, v^. Written here rather than taken from DJL so that its state (moments and step) can be
 * saved into checkpoints and restored exactly. Gradients are zeroed after each update.
 */
public final class AdamW {
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final NDManager manager;
    private final Map<String, NDArray> m = new LinkedHashMap<>();
    private final Map<String, NDArray> v = new LinkedHashMap<>();
    private long step;

    public AdamW(NDManager manager, double weightDecay) {
        this(manager, 0.9, 0.999, 1e-8, weightDecay);
    }

    public AdamW(NDManager manager, double beta1, double beta2, double eps, double weightDecay) {
        this.manager = manager;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
    }

    private final Map<String, NDArray> grads = new LinkedHashMap<>();

    /**
     * The gradient of a parameter. DJL's wrapper of a gradient points at the tensor autograd owns, so it must never
     * be closed (closing it corrupts autograd); it is fetched once, after the first backward, and reused, since
     * PyTorch accumulates into the same tensor on every later backward.
     */
    private NDArray grad(String name, NDArray w) {
        return grads.computeIfAbsent(name, k -> w.getGradient());
    }

    /** Global L2 norm of the gradients. */
    public double gradNorm(Map<String, NDArray> params) {
        double sum = 0;
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            try (NDManager scope = manager.newSubManager()) {
                NDArray sq = grad(e.getKey(), e.getValue()).square(); // in the parameter's manager until attached
                sq.attach(scope);
                sum += sq.sum().getFloat();
            }
        }
        return Math.sqrt(sum);
    }

    /** The parameters whose gradients hold a NaN or an infinity. */
    public java.util.List<String> nonFinite(Map<String, NDArray> params) {
        java.util.List<String> out = new java.util.ArrayList<>();
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            try (NDManager scope = manager.newSubManager()) {
                NDArray sq = grad(e.getKey(), e.getValue()).square();
                sq.attach(scope);
                if (!Float.isFinite(sq.sum().getFloat())) {
                    out.add(e.getKey());
                }
            }
        }
        return out;
    }

    /** One update with learning rate {@code lr}; gradients scaled by {@code gradScale} first (clipping). */
    public void update(Map<String, NDArray> params, double lr, double gradScale) {
        advance();
        apply(params, lr, gradScale);
    }

    /**
     * Starts an optimizer step (the count behind the bias corrections); {@link #apply} then updates each group of
     * parameters that trains with its own learning rate and clipping.
     */
    public void advance() {
        step++;
    }

    /**
     * The current step's update of {@code params} with learning rate {@code lr}, gradients scaled by
     * {@code gradScale} first; each parameter is updated from its own gradient and moments only.
     */
    public void apply(Map<String, NDArray> params, double lr, double gradScale) {
        // Autograd must not record the in-place updates of leaf parameters. PyTorch's grad mode is per thread and
        // starts on in a new thread (a distributed task's); DJL's collectors restore the mode they found.
        boolean gradMode = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try {
            applyWithoutGrad(params, lr, gradScale);
        } finally {
            JniUtils.setGradMode(gradMode);
        }
    }

    private void applyWithoutGrad(Map<String, NDArray> params, double lr, double gradScale) {
        double c1 = 1 - Math.pow(beta1, step);
        double c2 = 1 - Math.pow(beta2, step);
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            NDArray w = e.getValue();
            try (NDManager scope = manager.newSubManager()) {
                NDArray grad = grad(e.getKey(), w);
                NDArray g = grad.duplicate();
                g.attach(scope);
                if (gradScale != 1.0) {
                    g = g.mul((float) gradScale);
                }
                NDArray mi = m.computeIfAbsent(e.getKey(), k -> zerosLike(w));
                NDArray vi = v.computeIfAbsent(e.getKey(), k -> zerosLike(w));
                mi.muli((float) beta1).addi(g.mul((float) (1 - beta1)));
                vi.muli((float) beta2).addi(g.square().mul((float) (1 - beta2)));
                NDArray mhat = mi.div((float) c1);
                mhat.attach(scope);
                NDArray vhat = vi.div((float) c2);
                vhat.attach(scope);
                NDArray upd = mhat.div(vhat.sqrt().add((float) eps));
                if (weightDecay > 0) {
                    NDArray decay = w.mul((float) weightDecay);
                    decay.attach(scope);
                    upd = upd.add(decay);
                }
                // In place, outside any gradient collector: the parameter keeps its storage (set() would swap in a
                // Java-owned buffer on every step).
                w.subi(upd.mul((float) lr));
                // Zero autograd's gradient tensor itself (zero_()). Writing it with set(float[]) swapped its storage for
                // a fresh Java buffer every step, and training then hit sporadic NaN gradients with finite losses.
                JniUtils.zeroGrad((PtNDArray) w);
            }
        }
    }

    private NDArray zerosLike(NDArray w) {
        NDArray z = manager.zeros(w.getShape());
        return z;
    }

    public long step() {
        return step;
    }

    /** Moments by name ({@code m.<param>}, {@code v.<param>}) for checkpoints. */
    public Map<String, NDArray> state() {
        Map<String, NDArray> s = new LinkedHashMap<>();
        m.forEach((k, a) -> s.put("adam.m." + k, a));
        v.forEach((k, a) -> s.put("adam.v." + k, a));
        return s;
    }

    /** Restores moments and the step count saved by {@link #state()}. */
    public void restore(Map<String, float[]> values, Map<String, NDArray> params, long step) {
        this.step = step;
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            float[] mv = values.get("adam.m." + e.getKey());
            float[] vv = values.get("adam.v." + e.getKey());
            if (mv != null && vv != null) {
                m.put(e.getKey(), molt.teacher.nd.NativeArrays.floats(manager, mv, e.getValue().getShape()));
                v.put(e.getKey(), molt.teacher.nd.NativeArrays.floats(manager, vv, e.getValue().getShape()));
            }
        }
    }
}
