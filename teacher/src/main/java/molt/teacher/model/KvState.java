package molt.teacher.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

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
        long t = k.getShape().get(2);
        long need = length + t;
        if (keys == null || need > keys.getShape().get(2)) {
            long capacity = keys == null ? need : Math.max(need, keys.getShape().get(2) * 5 / 4);
            capacity = (capacity + GROWTH - 1) / GROWTH * GROWTH;
            keys = grow(keys, k, capacity);
            values = grow(values, v, capacity);
        }
        NDIndex rows = new NDIndex().addAllDim(2).addSliceDim(length, need);
        keys.set(rows, k);
        values.set(rows, v);
        length = need;
        NDIndex held = new NDIndex().addAllDim(2).addSliceDim(0, length);
        return new NDArray[] {keys.get(scope, held), values.get(scope, held)};
    }

    /** A buffer of {@code capacity} tokens shaped like {@code like}, holding the cached rows of {@code old}. */
    private NDArray grow(NDArray old, NDArray like, long capacity) {
        Shape s = like.getShape();
        NDArray fresh = manager.zeros(new Shape(s.get(0), s.get(1), capacity, s.get(3)), like.getDataType());
        if (old != null) {
            NDIndex rows = new NDIndex().addAllDim(2).addSliceDim(0, length);
            try (NDArray held = old.get(rows)) {
                fresh.set(rows, held);
            }
            old.close();
        }
        return fresh;
    }

    /** Bytes of the keys and values held (the tokens seen, not the spare capacity). */
    @Override
    public long bytes() {
        if (keys == null) {
            return 0;
        }
        Shape s = keys.getShape();
        return 2 * s.get(0) * s.get(1) * length * s.get(3) * keys.getDataType().getNumOfBytes();
    }

    @Override
    public void close() {
        manager.close();
    }
}
