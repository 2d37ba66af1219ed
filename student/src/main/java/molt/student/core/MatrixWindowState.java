package molt.student.core;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Decoding state of a matrix recurrence beside a sliding softmax window (Liger's hybrid): S [B, H, K, V] and the
 * keys and values of the w most recent tokens, all in one manager; constant in size once w tokens are held.
 */
public final class MatrixWindowState extends MatrixState {
    private final WindowBuffer window = new WindowBuffer(this);

    public MatrixWindowState(Device device) {
        super(device);
    }

    /** After a prefill: copies of the final {@code s} and of the last {@code w} keys and values k, v [B, H, T, D]. */
    public static MatrixWindowState after(NDManager scope, NDArray s, NDArray k, NDArray v, int w) {
        MatrixWindowState st = new MatrixWindowState(scope.getDevice());
        st.hold(s);
        st.window.fill(scope, k, v, w);
        return st;
    }

    public WindowBuffer window() {
        return window;
    }

    @Override
    public long bytes() {
        return super.bytes() + window.bytes();
    }
}
