package molt.student.mixer;

import static molt.student.core.Numerics.assertClose;
import static molt.student.core.Numerics.assertGradient;
import static molt.student.core.Numerics.dot;
import static molt.student.core.Numerics.f32;
import static molt.student.core.Numerics.gauss;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.IntUnaryOperator;
import molt.student.core.MatrixState;
import molt.student.core.Numerics;
import molt.student.core.OwnedState;
import molt.teacher.model.AttentionCore;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;

/**
 * The checks every mixer's tests run: the chunked form (with its final state) and the recurrent form token by token
 * against a double-precision reference, gradients of both inputs and parameters against finite differences of that
 * reference, and a decoding state that neither grows nor leaks.
 */
final class MixerHarness {
    private MixerHarness() {
    }

    /**
     * One case: inputs q, k, v [B, H, T, D] (and a hidden state [B, T, M] for mixers that read it), loss weights g
     * [B, H, T, D] and parameter values by name, all as flat fp32-representable doubles that the reference reads and
     * the finite differences perturb.
     */
    static final class Case {
        final int b;
        final int h;
        final int t;
        final int d;
        double[] q;
        double[] k;
        double[] v;
        double[] hidden;
        double[] g;
        final Map<String, double[]> params = new LinkedHashMap<>();

        Case(int b, int h, int t, int d) {
            this.b = b;
            this.h = h;
            this.t = t;
            this.d = d;
        }

        /** Draws q and k (Gaussian times {@code qk}) and v from {@code r}, in that order. */
        Case qkv(Random r, double qk) {
            q = gauss(r, b * h * t * d, qk);
            k = gauss(r, b * h * t * d, qk);
            v = gauss(r, b * h * t * d, 1);
            return this;
        }

        /** Draws the loss weights g from {@code r}. */
        Case loss(Random r) {
            g = gauss(r, b * h * t * d, 1);
            return this;
        }

        /**
         * For mixers that read the hidden state: q, k, v, hidden [B, T, m] and g from a {@code Random(seed)}, then the
         * mixer's own initial parameters as the case's (plus 0.3 N(0, 1) on those named in {@code perturbed}, drawn
         * from the same generator), loaded back into the mixer.
         */
        static Case fromMixer(Mixer mx, int b, int h, int t, int d, int m, long seed, Set<String> perturbed) {
            Random r = new Random(seed);
            Case c = new Case(b, h, t, d).qkv(r, 1);
            c.hidden = gauss(r, b * t * m, 1);
            c.loss(r);
            for (Map.Entry<String, NDArray> e : mx.parameters().entrySet()) {
                float[] f = e.getValue().toFloatArray();
                double[] x = new double[f.length];
                for (int i = 0; i < f.length; i++) {
                    x[i] = (float) (f[i] + (perturbed.contains(e.getKey()) ? 0.3 * r.nextGaussian() : 0));
                }
                c.params.put(e.getKey(), x);
            }
            c.load(mx);
            return c;
        }

        /** Input {@code q}, {@code k}, {@code v} or {@code hidden}, or the parameter of that name. */
        double[] array(String name) {
            return switch (name) {
                case "q" -> q;
                case "k" -> k;
                case "v" -> v;
                case "hidden" -> hidden;
                default -> params.get(name);
            };
        }

        /** Sets the case's values of every parameter the mixer has. */
        <M extends Mixer> M load(M mx) {
            mx.parameters().forEach((name, p) -> p.set(f32(params.get(name))));
            return mx;
        }

        /** The inputs as arrays in {@code m}; with a hidden state, q and k also serve as q and k before RoPE. */
        AttentionInput input(NDManager m) {
            Shape s = new Shape(b, h, t, d);
            NDArray qa = m.create(f32(q), s);
            NDArray ka = m.create(f32(k), s);
            NDArray va = m.create(f32(v), s);
            if (hidden == null) {
                return AttentionInput.qkv(qa, ka, va);
            }
            NDArray hs = m.create(f32(hidden), new Shape(b, t, hidden.length / (b * t))); // [B, T, M]
            return new AttentionInput(hs, qa, ka, va, qa, ka);
        }

        /** The loss sum(reference output * g) at the case's current values. */
        double loss(Function<Case, double[]> reference) {
            return dot(reference.apply(this), g);
        }
    }

    /** Time step {@code i} of an input [B, H, T, ...] (or of a hidden state [B, T, M] with {@code hidden}). */
    private static NDArray at(NDArray x, int i, boolean hidden) {
        return x == null ? null : x.get((hidden ? ":, " : ":, :, ") + i + ":" + (i + 1));
    }

    /** The recurrent form from {@code st}, one token at a time over {@code in}: outputs [B, H, T, D], flat. */
    static float[] recurrent(NDManager m, Mixer mx, AttentionState st, AttentionInput in) {
        int t = (int) in.time();
        float[] rec = new float[Math.toIntExact(in.v().size())];
        int d = (int) in.v().getShape().get(3);
        for (int i = 0; i < t; i++) {
            AttentionInput one = new AttentionInput(at(in.hidden(), i, true), at(in.q(), i, false),
                    at(in.k(), i, false), at(in.v(), i, false), at(in.qRaw(), i, false), at(in.kRaw(), i, false));
            Numerics.putStep(mx.step(m, st, one).toFloatArray(), rec, t, i, d);
        }
        return rec;
    }

    /**
     * The chunked form (asked for its final state) and the recurrent form from an empty state both match the
     * reference output {@code want} within {@code tol}; {@code states} then checks the two final states (chunked,
     * recurrent).
     */
    static void assertFormsAgree(NDManager m, Mixer mx, Case c, double[] want, double tol,
                                 BiConsumer<AttentionState, AttentionState> states) {
        AttentionInput in = c.input(m);
        AttentionCore.Output out = mx.forward(m, in, true);
        assertEquals(new Shape(c.b, c.h, c.t, c.d), out.out().getShape());
        assertClose(out.out().toFloatArray(), want, tol, mx.name() + " chunked vs reference");
        try (AttentionState st = mx.newState()) {
            assertClose(recurrent(m, mx, st, in), want, tol, mx.name() + " recurrent vs reference");
            states.accept(out.state(), st);
        }
        out.state().close();
    }

    /** For {@link MatrixState}s: both final states S match {@code want} [B, H, K, V] and hold as many bytes. */
    static BiConsumer<AttentionState, AttentionState> matrixStates(double[] want, double tol) {
        return (chunked, recurrent) -> {
            assertClose(((MatrixState) chunked).matrix().toFloatArray(), want, tol, "chunked state");
            assertClose(((MatrixState) recurrent).matrix().toFloatArray(), want, tol, "recurrent state");
            assertEquals(chunked.bytes(), recurrent.bytes(), "state bytes after the chunked and the recurrent form");
        };
    }

    /**
     * Gradients of sum(out * g) through the chunked form with respect to the named inputs ({@code q}, {@code k},
     * {@code v}; only these require gradients) and parameters.
     */
    static Map<String, float[]> gradients(NDManager m, Mixer mx, Case c, List<String> names) {
        AttentionInput in = c.input(m);
        Map<String, NDArray> arrays = new LinkedHashMap<>();
        for (String name : names) {
            NDArray a = switch (name) {
                case "q" -> in.q();
                case "k" -> in.k();
                case "v" -> in.v();
                default -> mx.parameters().get(name);
            };
            a.setRequiresGradient(true);
            arrays.put(name, a);
        }
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            NDArray out = mx.forward(m, in, false).out();
            gc.backward(out.mul(m.create(f32(c.g), out.getShape())).sum());
        }
        Map<String, float[]> grads = new LinkedHashMap<>();
        arrays.forEach((name, a) -> grads.put(name, a.getGradient().toFloatArray()));
        return grads;
    }

    /**
     * {@link #gradients} for {@code names}, each checked at {@code samples.applyAsInt(its length)} indices drawn from
     * {@code r} (name by name) against central differences of the reference's loss.
     */
    static void assertGradients(NDManager m, Mixer mx, Case c, List<String> names, IntUnaryOperator samples, Random r,
                                Function<Case, double[]> reference, double tol) {
        for (Map.Entry<String, float[]> e : gradients(m, mx, c, names).entrySet()) {
            double[] base = c.array(e.getKey());
            assertGradient(e.getValue(), base, samples.applyAsInt(base.length), r, () -> c.loss(reference), tol,
                    mx.name() + " d/d" + e.getKey());
        }
    }

    /**
     * Decodes {@code steps} tokens from {@code st}, each made by {@code token} in its own scope under {@code parent}:
     * the state's bytes after token {@code bytesAt} (0: before the first) equal those after the last, and so does the
     * number of arrays it holds after token {@code arraysAt} (0: not checked).
     */
    static void assertDecodingFlat(NDManager parent, Mixer mx, AttentionState st, int steps, int bytesAt,
                                   int arraysAt, Function<NDManager, AttentionInput> token) {
        long bytes = st.bytes();
        int arrays = 0;
        for (int i = 1; i <= steps; i++) {
            try (NDManager scope = parent.newSubManager()) {
                mx.step(scope, st, token.apply(scope));
            }
            bytes = i == bytesAt ? st.bytes() : bytes;
            arrays = i == arraysAt ? ((OwnedState) st).arrayCount() : arrays;
        }
        assertEquals(bytes, st.bytes(), mx.name() + ": state bytes after " + bytesAt + " vs " + steps + " tokens");
        if (arraysAt > 0) {
            assertEquals(arrays, ((OwnedState) st).arrayCount(), mx.name() + ": arrays held by the state");
        }
    }

    /**
     * {@link #assertDecodingFlat} from a fresh state, which is then closed: the parameters' manager {@code m} must
     * hold as many arrays as before.
     */
    static void assertDecodingFromEmptyFlat(NDManager m, Mixer mx, int steps, int bytesAt, int arraysAt,
                                            Function<NDManager, AttentionInput> token) {
        int params = m.getManagedArrays().size();
        try (AttentionState st = mx.newState()) {
            assertDecodingFlat(m, mx, st, steps, bytesAt, arraysAt, token);
        }
        assertEquals(params, m.getManagedArrays().size(), mx.name() + ": arrays left in the parameters' manager");
    }

    /** Random tokens: x ~ N(0, 1) [1, H, 1, D] as q, x * kScale as k and x * vScale as v. */
    static Function<NDManager, AttentionInput> tokens(int h, int d, double kScale, double vScale) {
        return scope -> {
            NDArray x = scope.randomNormal(new Shape(1, h, 1, d));
            return AttentionInput.qkv(x, kScale == 1 ? x : x.mul(kScale), vScale == 1 ? x : x.mul(vScale));
        };
    }
}
