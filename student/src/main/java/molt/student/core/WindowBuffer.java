package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.function.BiConsumer;
import molt.teacher.nd.Ops;

/**
 * The sliding window's part of a decoding state: the keys and values of the n <= w most recent tokens, held in the
 * owning state's manager. Each token appends its key and value; once more than w are held the oldest leaves (and a
 * hybrid mixer may fold it into its linear state first). Its size stops growing once n = w.
 *
 * <p>The tokens live in buffers of 2w slots, [B, H, 2w, D], oldest first in slots [start, start + n): a token is
 * written in place into the slot after the newest (one native call per array) and the window is read as a view
 * of its n slots, so no step copies the window. When the newest token would pass the last slot, the w - 1 tokens
 * that stay are first copied to slots [0, w - 1) (one copy per array every w tokens; source and destination never
 * overlap). The window stays in token order, so every sum over it runs in the order a concatenated window would.
 */
public final class WindowBuffer {
    private final OwnedState owner;
    private NDArray keys;
    private NDArray values;
    /** The buffers' shape [B, H, 2w, D]. */
    private long[] shape;
    private long start;
    private long n;

    WindowBuffer(OwnedState owner) {
        this.owner = owner;
    }

    /** Tokens held (n). */
    public long size() {
        return n;
    }

    /** The keys [B, H, n, D] of the window, a view in {@code scope}, valid until the next push; null before any token. */
    public NDArray keys(NDManager scope) {
        return keys == null ? null : Ops.slice(scope, keys, 2, start, start + n);
    }

    /** The values [B, H, n, D] of the window, a view in {@code scope}, valid until the next push; null before any token. */
    public NDArray values(NDManager scope) {
        return values == null ? null : Ops.slice(scope, values, 2, start, start + n);
    }

    /** Empty buffers of 2w slots for tokens shaped like k [B, H, t, D]. */
    private void allocate(NDManager scope, NDArray k, int window) {
        Shape s = k.getShape();
        shape = new long[] {s.get(0), s.get(1), 2L * window, s.get(3)};
        keys = owner.own(scope.zeros(new Shape(shape), k.getDataType()));
        values = owner.own(scope.zeros(new Shape(shape), k.getDataType()));
        start = 0;
        n = 0;
    }

    /** Holds copies of the last {@code window} keys and values of a prefill k, v [B, H, T, D]. */
    public void fill(NDManager scope, NDArray k, NDArray v, int window) {
        long t = k.getShape().get(2);
        long w0 = Math.max(0, t - window);
        allocate(scope, k, window);
        NDArray kw = Ops.slice(scope, k, 2, w0, t); // [B, H, min(T, w), D]
        NDArray vw = Ops.slice(scope, v, 2, w0, t);
        n = t - w0;
        Ops.put(keys, shape, 2, 0, n, kw);
        Ops.put(values, shape, 2, 0, n, vw);
    }

    /**
     * Appends one token's key and value [B, H, 1, D]. When that makes more than {@code window} tokens, the oldest
     * token's key and value [B, H, 1, D] (views in {@code scope}) go to {@code leaving}, if not null, before they are
     * dropped.
     */
    public void push(NDManager scope, NDArray k, NDArray v, int window, BiConsumer<NDArray, NDArray> leaving) {
        if (keys == null) {
            allocate(scope, k, window);
        }
        if (n == window) {
            if (leaving != null) {
                leaving.accept(Ops.slice(scope, keys, 2, start, start + 1), Ops.slice(scope, values, 2, start, start + 1));
            }
            start++;
            n--;
        }
        if (start + n == shape[2]) {
            // The w - 1 staying tokens (slots [w + 1, 2w)) move to [0, w - 1): disjoint, so one copy each.
            Ops.put(keys, shape, 2, 0, n, Ops.slice(scope, keys, 2, start, start + n));
            Ops.put(values, shape, 2, 0, n, Ops.slice(scope, values, 2, start, start + n));
            start = 0;
        }
        Ops.put(keys, shape, 2, start + n, start + n + 1, k);
        Ops.put(values, shape, 2, start + n, start + n + 1, v);
        n++;
    }

    /** Scores q.k / sqrt(D) [B, H, 1, n] of one query q [B, H, 1, D] against the held keys, in {@code scope}. */
    public NDArray scores(NDManager scope, NDArray q) {
        NDArray keysT = keys(scope).transpose(0, 1, 3, 2); // [B, H, D, n], a view in scope
        return Ops.matMul(q, keysT).muli(molt.teacher.nd.Scalars.of(SlidingWindow.scale(q)));
    }

    /** Bytes of the keys and values held (the n tokens of the window, not the buffers' spare slots). */
    long bytes() {
        return keys == null ? 0 : 2 * shape[0] * shape[1] * n * shape[3] * keys.getDataType().getNumOfBytes();
    }
}
