package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Map;

/**
 * A sub-quadratic replacement for one layer's softmax attention core. Every mixer has a chunked parallel form for
 * training ({@link #forward}) and a recurrent form for decoding ({@link #step}) that compute the same function,
 * and a naive reference in its tests. Its new parameters are listed by name; the teacher's q/k/v/o projections
 * stay the student layer's business.
 *
 * <p>Shapes: B batch, H heads (query heads: keys and values come GQA-expanded), T time, D head dim.
 */
public interface Mixer {

    /** The registry name, e.g. {@code hedgehog_window}. */
    String name();

    /** The new trainable parameters by name, e.g. {@code feature_map_q.weight} [H, D, F]; may be empty. */
    Map<String, NDArray> parameters();

    /** Output [B, H, T, D] and, when asked, the decoding state after the last token. */
    record Output(NDArray out, MixerState state) {
    }

    /**
     * The chunked parallel form from an empty state; results belong to {@code scope} (or the inputs' manager).
     * With {@code withState}, also returns the state a decoder needs to continue after the last token.
     */
    Output forward(NDManager scope, MixerInput in, boolean withState);

    /** An empty decoding state. */
    MixerState newState();

    /** One recurrent step: input with T = 1 -> output [B, H, 1, D]; updates {@code state} in place. */
    NDArray step(NDManager scope, MixerState state, MixerInput in);

    /** Freezes or unfreezes the new parameters. */
    default void setTrainable(boolean trainable) {
        parameters().values().forEach(p -> p.setRequiresGradient(trainable));
    }
}
