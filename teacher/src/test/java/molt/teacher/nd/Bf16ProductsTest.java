package molt.teacher.nd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.Random;
import molt.teacher.testing.ReferenceLlama;
import org.junit.jupiter.api.Test;

/**
 * BF16 products against double-precision loops over the same F16 weights: the product and the gradient reaching x
 * within BF16's rounding (inputs, weights and result each rounded to 8 significant bits, F32 accumulation), for a
 * plain and a transposed weight (a tied LM head is a transposed view), and no arrays left behind.
 */
class Bf16ProductsTest {
    private static final int ROWS = 7;
    private static final int IN = 96;
    private static final int OUT = 40;

    @Test
    void productAndInputGradientWithinBf16Rounding() {
        Random r = new Random(3);
        float[] x = gauss(r, ROWS * IN);
        float[] w = gauss(r, IN * OUT); // wT [IN, OUT], as F16 below
        float[] g = gauss(r, ROWS * OUT); // the gradient arriving at the product
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray w16 = m.create(w, new Shape(IN, OUT)).toType(DataType.FLOAT16, false);
            double[] w64 = toDouble(w16.toType(DataType.FLOAT32, false).toFloatArray()); // the weights as stored
            NDArray transposedStorage = w16.transpose().duplicate(); // [OUT, IN] in memory
            NDArray[] weights = {w16, transposedStorage.transpose()};
            int before = m.getManagedArrays().size();
            for (NDArray wT : weights) {
                try (NDManager s = m.newSubManager()) {
                    NDArray xa = s.create(x, new Shape(1, ROWS, IN));
                    xa.setRequiresGradient(true);
                    float[] y;
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray out = Bf16Products.product(xa, wT);
                        assertNotNull(out, "the BF16 function did not load");
                        assertEquals(new Shape(1, ROWS, OUT), out.getShape());
                        assertEquals(DataType.FLOAT32, out.getDataType());
                        y = out.toFloatArray();
                        gc.backward(out.mul(s.create(g, new Shape(1, ROWS, OUT))).sum());
                    }
                    float[] gx = xa.getGradient().toFloatArray();
                    double[] want = new double[ROWS * OUT];
                    double[] wantGx = new double[ROWS * IN];
                    for (int i = 0; i < ROWS; i++) {
                        for (int o = 0; o < OUT; o++) {
                            for (int k = 0; k < IN; k++) {
                                want[i * OUT + o] += x[i * IN + k] * w64[k * OUT + o];
                                wantGx[i * IN + k] += g[i * OUT + o] * w64[k * OUT + o];
                            }
                        }
                    }
                    // Each term carries at most 2^-8 + 2^-8 of relative rounding (x and W), the sum 2^-8 more.
                    double err = ReferenceLlama.relErr(y, want);
                    double errGx = ReferenceLlama.relErr(gx, wantGx);
                    assertTrue(err < 1.5e-2, "product: " + err);
                    assertTrue(err > 1e-5, "the product was not computed in BF16: " + err);
                    assertTrue(errGx < 1.5e-2, "x gradient: " + errGx);
                }
            }
            assertEquals(before, m.getManagedArrays().size(), "arrays left behind");
        }
    }

    /** A weight above 2^23 values takes the direct conversion: the product is the same function of x and W. */
    @Test
    void largeWeightsConvertDirectlyToTheSameProduct() {
        int in = 2048;
        int out = 4200; // 8.6M values: above the threshold
        int rows = 2;
        Random r = new Random(5);
        float[] x = gauss(r, rows * in);
        float[] w = gauss(r, in * out);
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray w16 = m.create(w, new Shape(in, out)).toType(DataType.FLOAT16, false);
            double[] w64 = toDouble(w16.toType(DataType.FLOAT32, false).toFloatArray());
            float[] y = Bf16Products.product(m.create(x, new Shape(rows, in)), w16).toFloatArray();
            double[] want = new double[rows * out];
            for (int i = 0; i < rows; i++) {
                for (int k = 0; k < in; k++) {
                    for (int o = 0; o < out; o++) {
                        want[i * out + o] += x[i * in + k] * w64[k * out + o];
                    }
                }
            }
            double err = ReferenceLlama.relErr(y, want);
            assertTrue(err < 1.5e-2 && err > 1e-5, "product within BF16 rounding, and in BF16: " + err);
            // Half of the same weight (under 2^23 values: the conversion by way of F32) gives the same products to
            // float rounding: both round each F16 value to the same BF16 one (the sums may run in another order).
            NDArray left = w16.get(":, 0:2100").duplicate();
            NDArray xa = m.create(x, new Shape(rows, in));
            float[] half = Bf16Products.product(xa, left).toFloatArray();
            for (int i = 0; i < rows; i++) {
                for (int o = 0; o < 2100; o++) {
                    assertEquals(y[i * out + o], half[i * 2100 + o], 1e-3 * (1 + Math.abs(y[i * out + o])),
                            "column " + o);
                }
            }
        }
    }

    private static float[] gauss(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    private static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }
}
