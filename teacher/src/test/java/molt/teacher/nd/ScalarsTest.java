package molt.teacher.nd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

/**
 * Backward must not read memory that Java has freed. Between forward and backward this test collects garbage and
 * refills freed native memory with NaN patterns; gradients must equal those of an undisturbed backward.
 */
class ScalarsTest {

    /** Frees what the garbage collector can, then reallocates small native blocks full of NaN. */
    private static List<ByteBuffer> poisonFreedMemory() throws InterruptedException {
        List<ByteBuffer> keep = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            System.gc();
            Thread.sleep(30);
            for (int i = 0; i < 2000; i++) {
                ByteBuffer b = ByteBuffer.allocateDirect(4 * (1 + i % 4)).order(ByteOrder.nativeOrder());
                while (b.remaining() >= 4) {
                    b.putFloat(Float.NaN);
                }
                keep.add(b);
            }
        }
        return keep;
    }

    private static float[] gradient(BiFunction<NDArray, NDManager, NDArray> f, boolean poison) throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray x = NativeArrays.floats(m, new float[] {1, -2, 3, 0.5f}, new Shape(4));
            x.setRequiresGradient(true);
            List<ByteBuffer> keep;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray y = f.apply(x, m).sum();
                keep = poison ? poisonFreedMemory() : List.of();
                gc.backward(y);
            }
            java.lang.ref.Reference.reachabilityFence(keep); // the poison stays allocated through backward
            return x.getGradient().toFloatArray();
        }
    }

    @Test
    void scalarOperandsSurviveGarbageCollectionBetweenForwardAndBackward() throws Exception {
        BiFunction<NDArray, NDManager, NDArray> f = (x, m) -> x.mul(Scalars.of(3.0)).div(Scalars.of(0.5))
                .maximum(Scalars.of(-1.0)).mul(x);
        float[] clean = gradient(f, false);
        for (int trial = 0; trial < 5; trial++) {
            assertArrayEquals(clean, gradient(f, true));
        }
        // By hand: y = max(6x, -1) * x; dy/dx = 12x where 6x > -1, else -1.
        assertArrayEquals(new float[] {12, -1, 36, 6}, clean, 1e-6f);
    }

    @Test
    void scalarsAreCachedPerValue() {
        assertTrue(Scalars.of(0.125) == Scalars.of(0.125));
        assertTrue(Scalars.of(2).getShape().dimension() == 0);
    }
}
