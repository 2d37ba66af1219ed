package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * A decoding pass on top of a {@link DecoderState}: from an empty state every core runs its parallel form and
 * keeps the state it ends in (prefill); after that, its recurrent form on that state.
 */
final class DecodePass implements LayerPass {
    private final Projector projector;
    private final DecoderState state;

    DecodePass(Projector projector, DecoderState state) {
        this.projector = projector;
        this.state = state;
    }

    @Override
    public Projector projector() {
        return projector;
    }

    @Override
    public long start() {
        return state.position();
    }

    @Override
    public NDArray attend(NDManager scope, int layer, AttentionCore core, AttentionInput in) {
        if (state.position() == 0) {
            AttentionCore.Output o = core.forward(scope, in, true);
            state.set(layer, o.state());
            return o.out();
        }
        return core.step(scope, state.get(layer, core), in);
    }
}
