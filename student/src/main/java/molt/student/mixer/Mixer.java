package molt.student.mixer;

import molt.teacher.model.AttentionCore;

/**
 * A sub-quadratic replacement for one layer's softmax attention core. Every mixer has a chunked parallel form for
 * training ({@link #forward}) and a recurrent form for decoding ({@link #step}) that compute the same function,
 * and a naive reference in its tests; its recurrent form in plain Java ({@link #cpuStep}, what CPU decoding of small
 * models runs) is tested against {@link #step}. Its new parameters are listed by name; the teacher's q/k/v/o projections
 * stay the decoder layer's business.
 *
 * <p>Shapes: B batch, H heads (query heads: keys and values come GQA-expanded), T time, D head dim.
 */
public interface Mixer extends AttentionCore {

    /** The registry name, e.g. {@code hedgehog_window}. */
    String name();

    /** Freezes or unfreezes the new parameters. */
    default void setTrainable(boolean trainable) {
        parameters().values().forEach(p -> p.setRequiresGradient(trainable));
    }
}
