package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import molt.teacher.nd.Ops;
import molt.teacher.nd.Scalars;
import molt.teacher.nd.TorchFunction;

/**
 * LoLCATs' Hedgehog feature map, per head h: phi(x) = [softmax(x W_h), softmax(-x W_h)], two separate softmaxes
 * over the feature axis, width 2F, each entry clamped below at 1e-12 (as LoLCATs does, so the normalizer never
 * reaches zero). (flash-linear-attention instead takes one softmax over [x W, -x W]; molt follows LoLCATs.)
 * W starts as the rectangular identity I[D, F] (LoLCATs' identity-style init), so phi starts as a softmax of
 * the first F coordinates of x and its negation.
 *
 * <p>Shapes: x [B, H, T, D]; W [H, D, F]; phi(x) [B, H, T, 2F].
 */
public final class HedgehogFeatureMap {
    public static final float CLAMP = 1e-12f;
    private static final TorchFunction FUNCTION = new TorchFunction("HedgehogFeatures", """
              def forward(self: __torch__.HedgehogFeatures,
                x: Tensor,
                w: Tensor) -> Tensor:
                proj = torch.matmul(x, w)
                phi = torch.cat([torch.softmax(proj, -1), torch.softmax(torch.neg(proj), -1)], -1)
                return torch.clamp_min(phi, 9.999999960041972e-13)
            """, true);

    private HedgehogFeatureMap() {
    }

    /** A fresh W [H, D, F] at the identity init, owned by {@code manager} (the mixer makes it trainable). */
    public static NDArray init(NDManager manager, int heads, int headDim, int featureDim) {
        float[] w = new float[heads * headDim * featureDim];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < Math.min(headDim, featureDim); i++) {
                w[(h * headDim + i) * featureDim + i] = 1f;
            }
        }
        return molt.teacher.nd.NativeArrays.floats(manager, w, new Shape(heads, headDim, featureDim));
    }

    /**
     * phi(x) for x [B, H, T, D] and W [H, D, F]; the result belongs to x's manager. Computed by one TorchScript
     * function whose clamp is {@code clamp_min}: the same values as {@link #applyOps}' {@code maximum}, with a backward
     * of two passes over phi instead of four (a tie with the clamp, which softmax outputs do not reach, gets the whole
     * gradient instead of half).
     */
    public static NDArray apply(NDArray x, NDArray w) {
        NDArray phi = FUNCTION.apply(x.getManager(), x, w);
        return phi != null ? phi : applyOps(x, w);
    }

    /** True when {@link #apply} runs the TorchScript function (false where the engine could not load it). */
    static boolean usesFunction() {
        return FUNCTION.available();
    }

    /** {@link #apply} op by op (where TorchScript is unavailable). */
    static NDArray applyOps(NDArray x, NDArray w) {
        NDArray wb = w.expandDims(0); // [1, H, D, F]
        wb.attach(x.getManager());
        NDArray proj = x.matMul(wb); // [B, H, T, F]
        NDArray pos = proj.softmax(-1);
        NDArray neg = proj.neg().softmax(-1);
        return pos.concat(neg, -1).maximum(Scalars.of(CLAMP)); // [B, H, T, 2F]
    }

    /**
     * {@link #apply} for the recurrent forms (no backward runs through it): the same ops, with W [H, D, F] broadcast
     * over the batch by the product itself and the projection negated in place once its softmax is taken.
     */
    public static NDArray step(NDArray x, NDArray w) {
        NDArray proj = Ops.matMul(x, w); // [B, H, T, F]
        NDArray pos = Ops.softmax(proj, -1);
        NDArray neg = Ops.softmax(proj.negi(), -1);
        return Ops.concat(pos, neg, -1).maximum(Scalars.of(CLAMP)); // [B, H, T, 2F]
    }
}
