package molt.student.core;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Decoding state of the convolution-fronted recurrences (Mamba-2, Gated DeltaNet): S [B, H, D, D] and, for each of
 * their short convolutions, the last {@link ShortConv#WIDTH} - 1 inputs [B, H, 3, D] (zeros before the first token),
 * which the next token's convolution reads.
 */
public final class ConvSsmState extends MatrixState {
    private final NDArray[] windows;

    /** An empty state for {@code convolutions} short convolutions. */
    public ConvSsmState(Device device, int convolutions) {
        super(device);
        this.windows = new NDArray[convolutions];
    }

    /**
     * After a prefill: a copy of the final {@code s}, and of the last 3 inputs of each convolution input src[i]
     * [B, H, T, D] ({@code zeros} [B, H, 3, D] in front, for T < 3).
     */
    public static ConvSsmState after(NDManager scope, NDArray s, NDArray zeros, NDArray[] src) {
        ConvSsmState st = new ConvSsmState(scope.getDevice(), src.length);
        st.hold(s);
        for (int i = 0; i < src.length; i++) {
            st.windows[i] = st.own(ShortConv.last(zeros, src[i]).duplicate());
        }
        return st;
    }

    /**
     * For one token's convolution inputs src[i] [B, H, 1, D]: returns copies in {@code scope} of the 3 inputs before
     * each (what {@link ShortConv#apply} takes as {@code before}) and moves every window on by its token.
     */
    public NDArray[] advance(NDManager scope, NDArray[] src) {
        NDArray[] before = new NDArray[src.length];
        for (int i = 0; i < src.length; i++) {
            if (windows[i] == null) {
                windows[i] = own(ShortConv.zeros(scope, src[i]));
            }
            before[i] = windows[i].duplicate();
            before[i].attach(scope); // first operand of the convolution's concat: its results must stay in scope
            windows[i] = swap(windows[i], ShortConv.last(before[i], src[i]).duplicate());
        }
        return before;
    }

    /** Convolution i's window of the last 3 inputs [B, H, 3, D], or null before the first token. */
    public NDArray window(int i) {
        return windows[i];
    }

    @Override
    public long bytes() {
        return super.bytes() + bytesOf(windows);
    }
}
