package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import molt.student.core.ShortConv;
import molt.teacher.model.AttentionInput;

/**
 * The mixers initialized from an attention layer that run v, k and q (before RoPE) through three short convolutions
 * before their recurrence (Mamba-2, Gated DeltaNet): they read the layer's normed hidden state too, and decode with a
 * {@link molt.student.core.ConvSsmState}.
 */
abstract class ConvMixer extends BaseMixer {
    final int heads;
    final int headDim;
    private final String[] convs;

    /** {@code convs}: the names of the convolutions of v, k and q, in that order. */
    ConvMixer(String name, NDManager m, MixerSettings settings, Map<String, Shape> shapes, int heads, int headDim,
              String[] convs) {
        super(name, m, settings, shapes);
        this.heads = heads;
        this.headDim = headDim;
        this.convs = convs;
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
        return view(name, owner).reshape(1, heads, 1, headDim);
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
            out[i] = ShortConv.apply(src[i], before[i], view(convs[i] + ".weight", src[i]).expandDims(0),
                    gain(convs[i] + ".bias", src[i]));
        }
        return out;
    }
}
