package molt.student.core;

import ai.djl.ndarray.NDArray;
import molt.teacher.nd.Scalars;

/**
 * The pointwise functions the mixers share, each written in the one numerically stable form every mixer uses (one
 * copy, so the chunked and recurrent forms and all mixers compute them alike).
 */
public final class Activations {
    private Activations() {
    }

    /** silu(x) = x sigmoid(x). */
    public static NDArray silu(NDArray x) {
        return x.mul(x.getNDArrayInternal().sigmoid());
    }

    /** softplus(x) = log(1 + e^x), computed as max(x, 0) + log(1 + e^-|x|) so that e^x never overflows. */
    public static NDArray softplus(NDArray x) {
        return x.maximum(Scalars.of(0f)).add(x.abs().neg().exp().add(1f).log());
    }

    /** logsigmoid(x) = -softplus(-x), computed as min(x, 0) - log(1 + e^-|x|). */
    public static NDArray logSigmoid(NDArray x) {
        return x.minimum(Scalars.of(0f)).sub(x.abs().neg().exp().add(1f).log());
    }
}
