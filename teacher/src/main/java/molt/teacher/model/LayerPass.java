package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * What one pass through the decoder layers asks of each layer, so that the layer loop itself never branches on
 * model kind or mode: the projector (plain, or with LoRA), the position of the first token, which form of the
 * attention core runs (parallel, or recurrent on a decoding state), what is recorded (taps) and where the pass
 * may stop.
 */
public interface LayerPass {

    /** How the layer's projections are applied. */
    Projector projector();

    /** The position of the pass's first token. */
    long start();

    /** Runs layer {@code layer}'s core on its input: out [B, Hq, T, D]. */
    NDArray attend(NDManager scope, int layer, AttentionCore core, AttentionInput in);

    /** Sees a layer's input h [B, T, H], core input and per-head core output [B, T, Hq, D] (taps). */
    default void record(int layer, NDArray hidden, AttentionInput in, AttentionCore core, NDArray perHead) {
    }

    /** The last layer the pass runs. */
    default int lastLayer(int numLayers) {
        return numLayers - 1;
    }

    /** False when nothing after layer {@code layer}'s core is needed (the rest of the layer is skipped). */
    default boolean needsOutput(int layer) {
        return true;
    }

    /**
     * True when every layer's intermediates must live until the caller closes the scope (a training forward, whose
     * backward reads them); false lets the loop free each layer's arrays before the next layer runs.
     */
    default boolean keepsIntermediates() {
        return false;
    }

    /**
     * True when no backward runs through the pass: a layer may then update its own temporaries in place (the same
     * values, fewer arrays; nothing it was given or has recorded is written). By default, whenever autograd records
     * nothing (decoding, the teacher's forward for targets and evaluation, a recomputed step's first pass): one
     * SmolLM2-sized layer took 24 against 26-28 ms.
     */
    default boolean inPlace() {
        return !ai.djl.pytorch.jni.JniUtils.isGradMode();
    }

    /** A parallel pass from position 0: every core's parallel form, nothing recorded; keeps every intermediate. */
    static LayerPass parallel(Projector projector) {
        return new LayerPass() {
            @Override
            public Projector projector() {
                return projector;
            }

            @Override
            public long start() {
                return 0;
            }

            @Override
            public NDArray attend(NDManager scope, int layer, AttentionCore core, AttentionInput in) {
                return core.forward(scope, in, false).out();
            }

            @Override
            public boolean keepsIntermediates() {
                return true;
            }
        };
    }
}
