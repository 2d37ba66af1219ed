package molt.student.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

/**
 * The Hedgehog feature map's TorchScript function against the same map op by op: the same values to the bit, and
 * the same gradients for x and W, including where the clamp at 1e-12 binds (large projections push one softmax's
 * entries below it); the map's values are checked against double-precision loops by the mixers' tests.
 */
class HedgehogFeatureMapTest {
    @Test
    void functionAndOpsAgreeOnValuesAndGradients() {
        assertTrue(HedgehogFeatureMap.usesFunction(), "the TorchScript function did not load");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            // x scaled so that projections reach +-40: exp(-80) entries fall below the clamp
            NDArray x = m.randomNormal(0, 12, new Shape(2, 3, 37, 8), ai.djl.ndarray.types.DataType.FLOAT32);
            NDArray w = m.randomNormal(0, 1, new Shape(3, 8, 6), ai.djl.ndarray.types.DataType.FLOAT32);
            NDArray upstream = m.randomNormal(new Shape(2, 3, 37, 12));
            float[][] fn = run(m, x, w, upstream, true);
            float[][] ops = run(m, x, w, upstream, false);
            assertArrayEquals(ops[0], fn[0], "values");
            long clamped = 0;
            for (float v : fn[0]) {
                clamped += v == HedgehogFeatureMap.CLAMP ? 1 : 0;
            }
            assertTrue(clamped > 0, "no entry reached the clamp");
            assertArrayEquals(ops[1], fn[1], 1e-6f, "x gradient");
            assertArrayEquals(ops[2], fn[2], 1e-6f, "W gradient");
            assertEquals(2 * 3 * 37 * 12, fn[0].length);
        }
    }

    /** phi's values, then x's and W's gradients of sum(phi * upstream), by the function or op by op. */
    private static float[][] run(NDManager m, NDArray x0, NDArray w0, NDArray upstream, boolean function) {
        try (NDManager s = m.newSubManager()) {
            NDArray x = x0.duplicate();
            NDArray w = w0.duplicate();
            x.attach(s);
            w.attach(s);
            x.setRequiresGradient(true);
            w.setRequiresGradient(true);
            float[] values;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray phi = function ? HedgehogFeatureMap.apply(x, w) : HedgehogFeatureMap.applyOps(x, w);
                values = phi.toFloatArray();
                gc.backward(phi.mul(upstream).sum());
            }
            return new float[][] {values, x.getGradient().toFloatArray(), w.getGradient().toFloatArray()};
        }
    }
}
