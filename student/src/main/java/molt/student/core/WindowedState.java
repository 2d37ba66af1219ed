package molt.student.core;

import ai.djl.Device;
import molt.teacher.model.AttentionState;

/**
 * Decoding state of a windowed mixer: its inner mixer's state (none for the window alone) and the keys and values of
 * the w most recent tokens ({@link #window}); constant in size once w tokens are held, since the inner state is.
 */
public final class WindowedState extends OwnedState {
    private final AttentionState inner;
    private final WindowBuffer window = new WindowBuffer(this);

    /** A state around {@code inner} (null for a window alone), with an empty window. */
    public WindowedState(Device device, AttentionState inner) {
        super(device);
        this.inner = inner;
    }

    /** The inner mixer's state, or null. */
    public AttentionState inner() {
        return inner;
    }

    /** The window's keys and values. */
    public WindowBuffer window() {
        return window;
    }

    @Override
    public long bytes() {
        return (inner == null ? 0 : inner.bytes()) + window.bytes();
    }

    @Override
    public void close() {
        if (inner != null) {
            inner.close();
        }
        super.close();
    }
}
