package molt.teacher.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Softmax attention's decoding state for one layer: the keys (after RoPE) and values of every token seen,
 * [B, Hkv, T, D], in the state's own manager. Its size grows with the context, which is what the students avoid.
 */
public final class KvState implements AttentionState {
    private final NDManager manager;
    private NDArray keys;
    private NDArray values;

    KvState(Device device) {
        this.manager = NDManager.newBaseManager(device);
    }

    /** Tokens cached. */
    public long length() {
        return keys == null ? 0 : keys.getShape().get(2);
    }

    /** Appends k, v [B, Hkv, t, D] and returns the whole cached k and v. */
    NDArray[] append(NDArray k, NDArray v) {
        NDArray nk = keys == null ? k.duplicate() : keys.concat(k, 2);
        NDArray nv = values == null ? v.duplicate() : values.concat(v, 2);
        nk.attach(manager);
        nv.attach(manager);
        if (keys != null) {
            keys.close();
            values.close();
        }
        keys = nk;
        values = nv;
        return new NDArray[] {nk, nv};
    }

    @Override
    public long bytes() {
        return keys == null ? 0 : keys.size() * 4 + values.size() * 4;
    }

    @Override
    public void close() {
        manager.close();
    }
}
