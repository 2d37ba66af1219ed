package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import molt.teacher.nd.Ops;

/**
 * The causal depthwise convolution of width 4 that Mamba-2 and Gated DeltaNet put before their recurrences, followed
 * by SiLU: out_t = silu(bias + sum_{j<4} w[j] x_{t-3+j}) per channel. The 3 inputs before the first token come from
 * the decoding state (zeros at the start), which is why the window is part of the state ({@link ConvSsmState}).
 *
 * <p>Shapes: x [B, H, T, D]; before [B, H, 3, D]; weight [1, H, D, 4] and bias [1, H, 1, D] (already in x's manager).
 */
public final class ShortConv {
    public static final int WIDTH = 4;

    private ShortConv() {
    }

    public static NDArray apply(NDArray x, NDArray before, NDArray weight, NDArray bias) {
        NDArray padded = before.concat(x, 2); // [B, H, T + 3, D]
        long t = x.getShape().get(2);
        long h = x.getShape().get(1);
        long d = x.getShape().get(3);
        NDArray out = bias;
        for (int j = 0; j < WIDTH; j++) {
            NDArray wj = weight.get(":, :, :, " + j).reshape(1, h, 1, d); // [1, H, 1, D]
            out = Ops.slice(padded, 2, j, j + t).mul(wj).add(out);
        }
        return Activations.silu(out);
    }

    /** The window before the first token: zeros [B, H, 3, D] for inputs x [B, H, T, D], in {@code scope}. */
    public static NDArray zeros(NDManager scope, NDArray x) {
        Shape s = x.getShape();
        return scope.zeros(new Shape(s.get(0), s.get(1), WIDTH - 1, s.get(3)));
    }

    /** The window after x [B, H, T, D]: the last 3 of {@code before} [B, H, 3, D] followed by x, as a view. */
    static NDArray last(NDArray before, NDArray x) {
        long t = x.getShape().get(2);
        NDArray all = before.concat(x, 2); // [B, H, 3 + T, D]
        return Ops.slice(all, 2, t, t + WIDTH - 1); // [B, H, 3, D]
    }
}
