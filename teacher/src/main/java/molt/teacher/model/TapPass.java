package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A parallel pass that records what a {@link Taps.Request} asks for, copying each recording into {@code out} (the
 * pass's own arrays stay in its scope), and stops after the last tapped layer when no logits are wanted.
 */
final class TapPass implements LayerPass {
    private final LayerPass parallel;
    private final Taps.Request request;
    private final NDManager out;
    private final NDManager scope;
    private final int last;
    private final Map<Integer, Taps.Layer> taps = new LinkedHashMap<>();

    TapPass(Projector projector, Taps.Request request, NDManager scope, NDManager out, int numLayers) {
        this.parallel = LayerPass.parallel(projector);
        this.request = request;
        this.scope = scope;
        this.out = out;
        this.last = request.logits() || request.layers() == null ? numLayers - 1
                : request.layers().stream().mapToInt(Integer::intValue).max().orElse(-1);
    }

    Map<Integer, Taps.Layer> taps() {
        return taps;
    }

    @Override
    public Projector projector() {
        return parallel.projector();
    }

    @Override
    public long start() {
        return 0;
    }

    @Override
    public NDArray attend(NDManager s, int layer, AttentionCore core, AttentionInput in) {
        return parallel.attend(s, layer, core, in);
    }

    @Override
    public void record(int layer, NDArray hidden, AttentionInput in, AttentionCore core, NDArray perHead) {
        if (!request.wants(layer)) {
            return;
        }
        taps.put(layer, new Taps.Layer(
                request.hidden() ? keep(hidden) : null,
                request.qkv() ? keep(in.q()) : null,
                request.qkv() ? keep(in.kvKeys()) : null,
                request.qkv() ? keep(in.kvValues()) : null,
                request.attentionOutput() ? keep(perHead) : null,
                request.attentionWeights() ? keep(core.attentionWeights(scope, in)) : null));
    }

    @Override
    public int lastLayer(int numLayers) {
        return last;
    }

    @Override
    public boolean needsOutput(int layer) {
        return request.logits() || layer < last;
    }

    /** A copy of x owned by {@code out} (x itself stays in the pass's scope, which may still use it). */
    private NDArray keep(NDArray x) {
        NDArray c = x.duplicate();
        c.attach(out);
        return c;
    }
}
