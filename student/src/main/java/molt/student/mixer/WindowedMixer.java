package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.student.core.SlidingWindow;
import molt.student.core.WindowedState;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;

/**
 * A mixer beside a sliding softmax window (the form LoLCATs found carries local copying), for the SSM and delta-rule
 * families: out = (1 - g_h) x inner(q, k, v) + g_h x window(q, k, v), where window is softmax attention over the w
 * most recent tokens with its own normalizer ({@link SlidingWindow}) and g_h = sigmoid(f_h), f_h a learned per-head
 * scalar started at window_factor_init (default {@link #FACTOR_INIT}: g = 0.73). The inner mixer
 * sees every token (its state is the whole prefix); training and decoding use the same window, and the decoding
 * state is the inner state plus w keys and values ({@link WindowedState}). Without an inner mixer
 * ({@code window_only}) it is the window alone: the baseline a windowed student has to beat.
 *
 * <p>Shapes: q, k, v [B, H, T, D] (keys and values GQA-expanded); out [B, H, T, D]; f [H].
 */
public final class WindowedMixer extends BaseMixer {
    /**
     * The default initial window factor f_h: sigmoid(1) = 0.73 of each output from the window. Here the window and
     * the inner mixer are mixed convexly, so LoLCATs' 0.1 (made for hedgehog_window's shared normalizer, where it
     * scales the window's exponentiated scores) leaves local copying to the inner mixer. Measured on the quickstart
     * (teacher, data, seeds, budgets; mixers trained in the second stage; docs/BENCHMARKS.md, "Initial window
     * weight"): from f = -2.197 to 1, mamba2_window went from perplexity 4.233 and recall@16 0.587 to 4.182 and
     * 0.835, gated_deltanet_window from 4.214 and 0.587 to 4.182 and 0.804 (f = 0 and 2.197 in between or worse).
     */
    public static final double FACTOR_INIT = 1.0;

    /** The window alone: no linear or state-space part, no parameters. */
    public static final String WINDOW_ONLY = "window_only";

    private final Mixer inner;
    private final NDArray factor;
    private final int heads;
    private final int headDim;

    private WindowedMixer(String name, NDManager m, int heads, int headDim, Mixer inner, MixerSettings settings) {
        super(name, m, settings, shapes(inner == null ? Map.of() : inner.parameters(), heads, inner != null),
                d -> new WindowedState(d, inner == null ? null : inner.newState()));
        requireChunkAtLeastWindow();
        this.inner = inner;
        this.heads = heads;
        this.headDim = headDim;
        if (inner != null) {
            inner.parameters().forEach(this::param); // the inner mixer's parameters, under their own names
        }
        this.factor = inner == null ? null : constant("window_factor", m, (float) settings.windowFactorInit());
    }

    /** {@code name}: {@code inner} beside the window, for heads of dim {@code headDim}. */
    static WindowedMixer around(String name, NDManager m, int heads, int headDim, Mixer inner,
                                MixerSettings settings) {
        return new WindowedMixer(name, m, heads, headDim, inner, settings);
    }

    /** The window alone. */
    static WindowedMixer windowOnly(NDManager m, int heads, int headDim, MixerSettings settings) {
        return new WindowedMixer(WINDOW_ONLY, m, heads, headDim, null, settings);
    }

    /** The inner mixer's parameter shapes, then the window factor f [H] when there is an inner mixer. */
    static Map<String, Shape> shapes(Map<String, ?> inner, int heads, boolean withFactor) {
        Map<String, Shape> p = new LinkedHashMap<>();
        inner.forEach((k, v) -> p.put(k, v instanceof Shape s ? s : ((NDArray) v).getShape()));
        if (withFactor) {
            p.put("window_factor", new Shape(heads));
        }
        return p;
    }

    /** sigmoid(f) as [1, H, 1, 1], owned by {@code owner}'s manager. */
    private NDArray gate(NDArray owner) {
        return headGate(factor, owner);
    }

    /** (1 - g) a + g w, as a + g (w - a). */
    private NDArray mix(NDArray a, NDArray w, NDArray owner) {
        return a.add(w.sub(a).mul(gate(owner)));
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDArray window = SlidingWindow.softmax(scope, in.q(), in.k(), in.v(), settings.chunkSize(), settings.window());
        Output o = inner == null ? null : inner.forward(scope, in, withState);
        NDArray out = inner == null ? window : mix(o.out(), window, in.q());
        WindowedState st = null;
        if (withState) {
            st = new WindowedState(scope.getDevice(), o == null ? null : o.state());
            st.window().fill(scope, in.k(), in.v(), settings.window());
        }
        return new Output(out, st);
    }

    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        WindowedState st = (WindowedState) state;
        NDArray a = inner == null ? null : inner.step(scope, st.inner(), in);
        st.window().push(scope, in.k(), in.v(), settings.window(), null);
        NDArray window = SlidingWindow.softmaxStep(scope, in.q(), st.window()); // [B, H, 1, D]
        return inner == null ? window : mix(a, window, in.q());
    }

    /**
     * In plain Java, from a copy of the prefilled state: the inner mixer's Java step (none: no Java step here
     * either), then the window's softmax with its own normalizer, mixed as out = a + g (window - a).
     */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        WindowedState st = (WindowedState) prefilled;
        molt.teacher.cpu.CpuStep in = inner == null ? null : inner.cpuStep(st.inner(), kvGroups);
        molt.student.core.WindowRing ring = molt.student.core.WindowRing.of(st.window(), heads, headDim,
                settings.window(), device);
        if ((inner != null && in == null) || ring == null) {
            return null;
        }
        float[] gate = factor == null ? null : headGateValues(factor);
        int d = headDim;
        return new molt.teacher.cpu.CpuStep() {
            private final float[] a = new float[heads * d];
            private final float[] w = new float[heads * d];

            @Override
            public void step(Input input, float[] out) {
                if (in != null) {
                    in.step(input, a);
                }
                ring.push(input.k, input.v, kvGroups, null);
                for (int h = 0; h < heads; h++) {
                    ring.softmax(input.q, h * d, h, w, h * d);
                    for (int j = h * d; j < (h + 1) * d; j++) {
                        out[j] = in == null ? w[j] : a[j] + (w[j] - a[j]) * gate[h];
                    }
                }
            }

            @Override
            public long bytes() {
                return (in == null ? 0 : in.bytes()) + ring.bytes();
            }
        };
    }
}
