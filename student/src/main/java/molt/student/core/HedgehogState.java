package molt.student.core;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import molt.teacher.nd.Ops;

/**
 * Decoding state of the Hedgehog mixers: the linear state S [B, H, 2F, D] = sum phi(k) v^T and normalizer
 * z [B, H, 2F, 1] = sum phi(k) over the tokens in the linear term, plus, for the windowed mixer, the keys and
 * values [B, H, n, D] of the n <= w most recent tokens ({@link #window}, empty otherwise). Its size stops growing
 * once n = w.
 */
public final class HedgehogState extends OwnedState {
    private final WindowBuffer window = new WindowBuffer(this);
    private NDArray s;
    private NDArray z;

    public HedgehogState(Device device) {
        super(device);
    }

    /** The sliding window's keys and values (hedgehog_window; empty for hedgehog). */
    public WindowBuffer window() {
        return window;
    }

    /** A state holding copies of S and z. */
    public static HedgehogState after(NDManager scope, NDArray s, NDArray z) {
        HedgehogState st = new HedgehogState(scope.getDevice());
        st.s = st.own(s.duplicate());
        st.z = st.own(z.duplicate());
        return st;
    }

    /** Zeros for S and z before the first token: S [B, H, F2, D], z [B, H, F2, 1] for one token q [B, H, 1, D] and its
     * features fq [B, H, 1, F2]. */
    void start(NDManager scope, NDArray q, NDArray fq) {
        if (s == null) {
            long f2 = fq.getShape().get(3);
            long b = q.getShape().get(0);
            long h = q.getShape().get(1);
            long d = q.getShape().get(3);
            s = own(scope.zeros(new Shape(b, h, f2, d)));
            z = own(scope.zeros(new Shape(b, h, f2, 1)));
        }
    }

    /** Adds one token to the linear term: S += phi(k) v^T, z += phi(k); phi(k)^T [B, H, 2F, 1], v [B, H, 1, D]. */
    void add(NDArray kT, NDArray v) {
        NDArray ds = Ops.matMul(kT, v); // [B, H, 2F, D]
        if (s == null) {
            s = own(ds.duplicate());
            z = own(kT.duplicate());
            return;
        }
        s.addi(ds); // in place: the state's arrays are read only after the step's update
        z.addi(kT);
    }

    /** S [B, H, 2F, D], or null before the first token. */
    public NDArray linearState() {
        return s;
    }

    /** z [B, H, 2F, 1], or null before the first token. */
    public NDArray normalizer() {
        return z;
    }

    @Override
    public long bytes() {
        return bytesOf(s, z) + window.bytes();
    }
}
