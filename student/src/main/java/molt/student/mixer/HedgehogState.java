package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Decoding state of the Hedgehog mixers: the linear state S [B, H, 2F, D] = sum phi(k) v^T and normalizer
 * z [B, H, 2F, 1] = sum phi(k) over the tokens in the linear term, plus, for the windowed mixer, the keys and
 * values [B, H, n, D] of the n <= w most recent tokens. Its size stops growing once n = w.
 */
public final class HedgehogState implements MixerState {
    private final NDManager manager;
    NDArray s;
    NDArray z;
    NDArray bufK;
    NDArray bufV;

    HedgehogState(ai.djl.Device device) {
        this.manager = NDManager.newBaseManager(device);
    }

    /** Takes ownership of {@code x} (moves it into the state's manager). */
    NDArray own(NDArray x) {
        x.attach(manager);
        return x;
    }

    /** Replaces an owned array, closing the old one. */
    NDArray swap(NDArray old, NDArray fresh) {
        own(fresh);
        if (old != null && old != fresh) {
            old.close();
        }
        return fresh;
    }

    public NDArray linearState() {
        return s;
    }

    public NDArray normalizer() {
        return z;
    }

    public NDArray bufferKeys() {
        return bufK;
    }

    public NDArray bufferValues() {
        return bufV;
    }

    @Override
    public long bytes() {
        long n = 0;
        for (NDArray a : new NDArray[] {s, z, bufK, bufV}) {
            if (a != null) {
                n += a.size() * a.getDataType().getNumOfBytes();
            }
        }
        return n;
    }

    /** Arrays held by the state's manager (tests check it stays flat while decoding). */
    int arrayCount() {
        return manager.getManagedArrays().size();
    }

    @Override
    public void close() {
        manager.close();
    }
}
