package molt.student.core;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import molt.teacher.model.AttentionState;

/**
 * Base of the mixers' decoding states: the state's arrays live in its own manager, so per-step temporaries never
 * join them and closing the state frees everything it holds. Only this package's states and their parts
 * ({@link WindowBuffer}) move arrays in and out; the mixers go through the states' methods.
 */
public abstract class OwnedState implements AttentionState {
    private final NDManager manager;

    OwnedState(Device device) {
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

    /** Bytes of fp32 arrays (null entries count 0). */
    static long bytesOf(NDArray... arrays) {
        long n = 0;
        for (NDArray a : arrays) {
            n += a == null ? 0 : a.size() * a.getDataType().getNumOfBytes();
        }
        return n;
    }

    /** Arrays held by the state's manager (tests check it stays flat while decoding). */
    public int arrayCount() {
        return manager.getManagedArrays().size();
    }

    @Override
    public void close() {
        manager.close();
    }
}
