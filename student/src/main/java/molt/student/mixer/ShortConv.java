package molt.student.mixer;

import ai.djl.ndarray.NDArray;

/**
 * The causal depthwise convolution of width 4 that Mamba-2 and Gated DeltaNet put before their recurrences, followed
 * by SiLU: out_t = silu(bias + sum_{j<4} w[j] x_{t-3+j}) per channel. The 3 inputs before the first token come from
 * the decoding state (zeros at the start), which is why the window is part of the state.
 *
 * <p>Shapes: x [B, H, T, D]; before [B, H, 3, D]; weight [1, H, D, 4] and bias [1, H, 1, D] (already in x's manager).
 */
final class ShortConv {
    static final int WIDTH = 4;

    private ShortConv() {
    }

    static NDArray apply(NDArray x, NDArray before, NDArray weight, NDArray bias) {
        NDArray padded = before.concat(x, 2); // [B, H, T + 3, D]
        long t = x.getShape().get(2);
        long h = x.getShape().get(1);
        long d = x.getShape().get(3);
        NDArray out = bias;
        for (int j = 0; j < WIDTH; j++) {
            NDArray wj = weight.get(":, :, :, " + j).reshape(1, h, 1, d); // [1, H, 1, D]
            out = padded.get(":, :, " + j + ":" + (j + t)).mul(wj).add(out);
        }
        return out.mul(out.getNDArrayInternal().sigmoid());
    }
}
