package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;
import molt.student.core.ConvSsmState;
import molt.student.core.ShortConv;
import molt.teacher.model.AttentionState;
import molt.teacher.model.AttentionInput;

/**
 * The mixers initialized from an attention layer that run v, k and q (before RoPE) through three short convolutions
 * before their recurrence (Mamba-2, Gated DeltaNet): they read the layer's normed hidden state too, and decode with a
 * {@link ConvSsmState} that carries the convolutions' windows. Both forms run here; a subclass supplies its
 * recurrence on the convolutions' outputs (chunked and one step) and what follows it.
 */
abstract class ConvMixer extends BaseMixer {
    final int heads;
    final int headDim;
    private final String[] convs;

    /** {@code convs}: the names of the convolutions of v, k and q, in that order. */
    ConvMixer(String name, NDManager m, MixerSettings settings, Map<String, Shape> shapes, int heads, int headDim,
              String[] convs) {
        super(name, m, settings, shapes, d -> new ConvSsmState(d, convs.length));
        this.heads = heads;
        this.headDim = headDim;
        this.convs = convs;
    }

    /** Parameter {@code name}'s values (for the plain-Java step, {@link ConvCpuStep}). */
    final float[] values(String name) {
        return molt.teacher.nd.NativeArrays.values(parameters().get(name));
    }

    /** A prefilled state a plain-Java step can continue (batch 1), or null. */
    static molt.student.core.ConvSsmState javaState(molt.teacher.model.AttentionState prefilled) {
        molt.student.core.ConvSsmState st = (molt.student.core.ConvSsmState) prefilled;
        return ConvCpuStep.batchOne(st) ? st : null;
    }

    /** Weight [H, D, 4] and bias [H, D] of each convolution, in order: the first entries of a shapes map. */
    static Map<String, Shape> convShapes(String[] convs, int heads, int headDim) {
        Map<String, Shape> p = new LinkedHashMap<>();
        for (String c : convs) {
            p.put(c + ".weight", new Shape(heads, headDim, ShortConv.WIDTH));
            p.put(c + ".bias", new Shape(heads, headDim));
        }
        return p;
    }

    /** The convolutions' weights and biases, uniform in +-1/2 as a width-4 convolution is initialized. */
    final void initConvs(NDManager m, SplittableRandom r) {
        for (String c : convs) {
            uniform(c + ".weight", m, r, 0.5);
            uniform(c + ".bias", m, r, 0.5);
        }
    }

    /** Parameter {@code name} [H, D] as a per-head gain [1, H, 1, D] in {@code owner}'s manager. */
    final NDArray gain(String name, NDArray owner) {
        return view(name, owner).reshape(1, heads, 1, headDim); // [H, D] -> [1, H, 1, D]
    }

    /** hidden [B, T, M] through parameter {@code name} [M, H*D], split into heads: [B, H, T, D]. */
    final NDArray perHead(String name, NDArray hidden) {
        Shape hs = hidden.getShape();
        return hidden.matMul(view(name, hidden)) // [B, T, H*D]
                .reshape(hs.get(0), hs.get(1), heads, headDim).transpose(0, 2, 1, 3); // [B, T, H, D] -> [B, H, T, D]
    }

    /** The convolutions' inputs v, k and q before RoPE [B, H, T, D]; fails without them or the hidden state. */
    final NDArray[] sources(AttentionInput in) {
        if (in.hidden() == null || in.qRaw() == null || in.kRaw() == null) {
            throw new IllegalArgumentException(name() + " needs the layer's normed hidden state and q, k before RoPE");
        }
        return new NDArray[] {in.v(), in.kRaw(), in.qRaw()};
    }

    /** Each source through its convolution and SiLU, given the 3 inputs before it (zeros at the start). */
    final NDArray[] convolve(NDArray[] src, NDArray[] before) {
        NDArray[] out = new NDArray[src.length];
        for (int i = 0; i < src.length; i++) {
            out[i] = ShortConv.apply(src[i], before[i], view(convs[i] + ".weight", src[i]).expandDims(0), // [1,H,D,4]
                    gain(convs[i] + ".bias", src[i])); // [1, H, 1, D]
        }
        return out;
    }

    /**
     * The chunked recurrence on the convolutions' outputs conv = (v, k, q) [B, H, T, D] and the hidden state
     * [B, T, M]: its output [B, H, T, D] and final state S [B, H, D, D].
     */
    abstract NDList chunked(NDManager scope, NDArray[] conv, NDArray hidden);

    /** One step of the recurrence for one token's conv and hidden [B, 1, M], as a map from S to (output, next S). */
    abstract Function<NDArray, NDList> recurrence(NDArray[] conv, NDArray hidden);

    /** What follows the recurrence: its output y [B, H, T, D] to the mixer's output. */
    abstract NDArray finish(NDArray y, NDArray[] conv, NDArray hidden);

    @Override
    public final Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDArray[] src = sources(in);
        NDArray zeros = ShortConv.zeros(scope, in.v());
        NDArray[] conv = convolve(src, new NDArray[] {zeros, zeros, zeros}); // [B, H, T, D] each
        NDList r = chunked(scope, conv, in.hidden());
        ConvSsmState st = withState ? ConvSsmState.after(scope, r.get(1), zeros, src) : null;
        return new Output(finish(r.get(0), conv, in.hidden()), st);
    }

    @Override
    public final NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        NDArray[] src = sources(in);
        ConvSsmState st = (ConvSsmState) state;
        NDArray[] conv = convolve(src, st.advance(scope, src)); // [B, H, 1, D] each
        return finish(st.step(scope, conv[2], conv[0], recurrence(conv, in.hidden())), conv, in.hidden());
    }
}
