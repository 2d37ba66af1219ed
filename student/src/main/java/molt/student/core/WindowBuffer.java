package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import java.util.function.BiConsumer;

/**
 * The sliding window's part of a decoding state: the keys and values [B, H, n, D] of the n <= w most recent tokens,
 * held in the owning state's manager. Each token appends its key and value; once more than w are held the oldest
 * leaves (and a hybrid mixer may fold it into its linear state first). Its size stops growing once n = w.
 */
public final class WindowBuffer {
    private final OwnedState owner;
    private NDArray keys;
    private NDArray values;

    WindowBuffer(OwnedState owner) {
        this.owner = owner;
    }

    /** The keys [B, H, n, D] of the window, or null before any token. */
    public NDArray keys() {
        return keys;
    }

    /** The values [B, H, n, D] of the window, or null before any token. */
    public NDArray values() {
        return values;
    }

    /** Holds copies of the last {@code window} keys and values of a prefill k, v [B, H, T, D]. */
    public void fill(NDArray k, NDArray v, int window) {
        long t = k.getShape().get(2);
        long w0 = Math.max(0, t - window);
        keys = owner.own(k.get(":, :, " + w0 + ":" + t).duplicate()); // [B, H, min(T, w), D]
        values = owner.own(v.get(":, :, " + w0 + ":" + t).duplicate());
    }

    /**
     * Appends one token's key and value [B, H, 1, D]. When that makes more than {@code window} tokens, the oldest
     * token's key and value [B, H, 1, D] (views in {@code scope}) go to {@code leaving}, if not null, before they are
     * dropped.
     */
    public void push(NDManager scope, NDArray k, NDArray v, int window, BiConsumer<NDArray, NDArray> leaving) {
        if (keys == null) {
            keys = owner.own(k.duplicate());
            values = owner.own(v.duplicate());
            return;
        }
        long n = keys.getShape().get(2);
        if (n < window) {
            keys = owner.swap(keys, keys.concat(k, 2));
            values = owner.swap(values, values.concat(v, 2));
            return;
        }
        // Full: the oldest token leaves (the hybrid folds it first), then the rest and the new token are joined in
        // one op per array: the same rows in the same order as appending and then dropping the first.
        if (leaving != null) {
            NDIndex first = new NDIndex().addAllDim(2).addSliceDim(0, 1);
            leaving.accept(keys.get(scope, first), values.get(scope, first));
        }
        NDIndex rest = new NDIndex().addAllDim(2).addSliceDim(1, n);
        keys = owner.swap(keys, keys.get(scope, rest).concat(k, 2));
        values = owner.swap(values, values.get(scope, rest).concat(v, 2));
    }

    /** Scores q.k / sqrt(D) [B, H, 1, n] of one query q [B, H, 1, D] against the held keys, in {@code scope}. */
    public NDArray scores(NDManager scope, NDArray q) {
        NDArray keysT = keys.transpose(0, 1, 3, 2); // [B, H, D, n]
        keysT.attach(scope); // a view of state-owned keys: keep it out of the state's manager
        return q.matMul(keysT).mul(molt.teacher.nd.Scalars.of(SlidingWindow.scale(q)));
    }

    long bytes() {
        return OwnedState.bytesOf(keys, values);
    }
}
