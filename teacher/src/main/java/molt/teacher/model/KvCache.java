package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Decoding state of the softmax teacher: per layer the keys (after RoPE) and values of every token seen,
 * [B, Hkv, T, D], and the next position. Its size grows with the context, which is what the students avoid.
 */
public final class KvCache implements LanguageModel.DecodingState {
    private final NDManager manager;
    final NDArray[] keys;
    final NDArray[] values;
    long position;

    /** Advances the position after a decode call has appended every layer. */
    public void advance(long tokens) {
        position += tokens;
    }

    /** An empty cache for {@code layers} layers (a student uses only its softmax layers' slots). */
    public KvCache(ai.djl.Device device, int layers) {
        this.manager = NDManager.newBaseManager(device);
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
    }

    /** Number of tokens cached. */
    @Override
    public long position() {
        return position;
    }

    /** Bytes held by the cached keys and values. */
    @Override
    public long bytes() {
        long n = 0;
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) {
                n += keys[i].size() * 4 + values[i].size() * 4;
            }
        }
        return n;
    }

    /** Appends k, v [B, Hkv, t, D] for layer i and returns the whole cached k and v. */
    public NDArray[] append(int layer, NDArray k, NDArray v) {
        NDArray nk = keys[layer] == null ? k.duplicate() : keys[layer].concat(k, 2);
        NDArray nv = values[layer] == null ? v.duplicate() : values[layer].concat(v, 2);
        nk.attach(manager);
        nv.attach(manager);
        if (keys[layer] != null) {
            keys[layer].close();
            values[layer].close();
        }
        keys[layer] = nk;
        values[layer] = nv;
        return new NDArray[] {nk, nv};
    }

    @Override
    public void close() {
        manager.close();
    }
}
