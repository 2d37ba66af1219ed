package molt.student.mixer;

import ai.djl.ndarray.NDArray;

/**
 * Decoding state of the Hedgehog mixers: the linear state S [B, H, 2F, D] = sum phi(k) v^T and normalizer
 * z [B, H, 2F, 1] = sum phi(k) over the tokens in the linear term, plus, for the windowed mixer, the keys and
 * values [B, H, n, D] of the n <= w most recent tokens. Its size stops growing once n = w.
 */
public final class HedgehogState extends OwnedState {
    NDArray s;
    NDArray z;
    NDArray bufK;
    NDArray bufV;

    HedgehogState(ai.djl.Device device) {
        super(device);
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
        return bytesOf(s, z, bufK, bufV);
    }
}
