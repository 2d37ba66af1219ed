package molt.teacher.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import molt.teacher.nd.Ops;

/**
 * Softmax attention's decoding state for one layer: the keys (after RoPE) and values of every token seen,
 * [B, Hkv, T, D], in the state's own manager. Its size grows with the context, which is what the students avoid.
 *
 * <p>The tokens live in buffers with room for more ([B, Hkv, capacity, D]): a step writes its keys and values in
 * place and reads the first T rows as views, instead of copying the whole cache into a new array every token (at
 * 8,192 tokens that copy and its fresh allocation were three quarters of a decoding step). The buffers grow by at
 * least a quarter, rounded up to {@link #GROWTH} tokens, so growing costs O(1) per token on average.
 */
public final class KvState implements AttentionState {
    /** Capacity is a multiple of this many tokens. */
    static final long GROWTH = 256;

    private final NDManager manager;
    private NDArray keys;
    private NDArray values;
    /** The buffers' shape [B, Hkv, capacity, D]. */
    private long[] shape;
    private long length;

    KvState(Device device) {
        this.manager = NDManager.newBaseManager(device);
    }

    /** Tokens cached. */
    public long length() {
        return length;
    }

    /**
     * Appends k, v [B, Hkv, t, D] and returns views of the whole cached k and v [B, Hkv, length, D] in {@code scope}
     * (valid until the next append).
     */
    NDArray[] append(NDManager scope, NDArray k, NDArray v) {
        Shape ks = k.getShape();
        long t = ks.get(2);
        long need = length + t;
        if (keys == null || need > shape[2]) {
            long capacity = keys == null ? need : Math.max(need, shape[2] * 5 / 4);
            capacity = (capacity + GROWTH - 1) / GROWTH * GROWTH;
            long[] grown = {ks.get(0), ks.get(1), capacity, ks.get(3)};
            keys = grow(keys, k, grown);
            values = grow(values, v, grown);
            shape = grown;
        }
        Ops.put(keys, shape, 2, length, need, k); // one native call each (an NDIndex set takes six)
        Ops.put(values, shape, 2, length, need, v);
        length = need;
        return new NDArray[] {Ops.slice(scope, keys, 2, 0, length), Ops.slice(scope, values, 2, 0, length)};
    }

    /** A buffer of shape {@code grown} (room for more tokens) with {@code like}'s type, holding {@code old}'s rows. */
    private NDArray grow(NDArray old, NDArray like, long[] grown) {
        NDArray fresh = manager.zeros(new Shape(grown), like.getDataType());
        if (old != null) {
            try (NDArray held = Ops.slice(manager, old, 2, 0, length)) {
                Ops.put(fresh, grown, 2, 0, length, held);
            }
            old.close();
        }
        return fresh;
    }

    /** The cached keys and values of batch row 0 as F32 values, [Hkv, length, D] each (for {@link
     * molt.teacher.cpu.SoftmaxStep}). */
    float[][] values() {
        try (NDManager scope = manager.newSubManager()) {
            NDArray k = Ops.slice(scope, keys, 2, 0, length).get(0); // [Hkv, length, D]
            NDArray v = Ops.slice(scope, values, 2, 0, length).get(0);
            return new float[][] {molt.teacher.nd.NativeArrays.values(k), molt.teacher.nd.NativeArrays.values(v)};
        }
    }

    /** The cache's batch, key/value heads and head dim {B, Hkv, D}; null while it is empty. */
    long[] dims() {
        return keys == null ? null : new long[] {shape[0], shape[1], shape[3]};
    }

    /** Bytes of the keys and values held (the tokens seen, not the spare capacity). */
    @Override
    public long bytes() {
        if (keys == null) {
            return 0;
        }
        return 2 * shape[0] * shape[1] * length * shape[3] * keys.getDataType().getNumOfBytes();
    }

    @Override
    public void close() {
        manager.close();
    }
}
