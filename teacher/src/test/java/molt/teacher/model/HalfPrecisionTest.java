package molt.teacher.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.Precision;
import molt.teacher.io.Checkpoints;
import molt.teacher.io.DType;
import molt.teacher.io.HalfArrays;
import molt.teacher.io.HalfConversion;
import molt.teacher.io.SafetensorsFile;
import molt.teacher.io.SafetensorsWriter;
import molt.teacher.io.WeightSource;
import molt.teacher.testing.ReferenceLlama;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** 16-bit frozen weights: the loading path bit for bit against the file, refusals, and logits against F32. */
class HalfPrecisionTest {

    /** The F16 value nearest to {@code v} (ties to even), computed in double: independent of molt's bit code. */
    private static double nearestF16(double v) {
        double a = Math.abs(v);
        if (a == 0) {
            return v;
        }
        int exp = Math.max(Math.getExponent(a), -14); // below 2^-14 the spacing stays 2^-24 (subnormals)
        double quantum = Math.scalb(1.0, exp - 10);
        return Math.copySign(Math.rint(a / quantum) * quantum, v);
    }

    private static short[] bits(NDArray a) {
        ShortBuffer sb = a.toByteBuffer().order(ByteOrder.nativeOrder()).asShortBuffer();
        short[] s = new short[sb.remaining()];
        sb.get(s);
        return s;
    }

    private static float f16(short h) {
        return molt.teacher.io.Floats.f16ToFloat(h);
    }

    @Test
    void everyStoredValueIsTheNearestF16OfTheFileValue(@TempDir Path dir) {
        for (DType dtype : new DType[] {DType.BF16, DType.F16, DType.F32}) {
            Path model = TinyCheckpoints.builder().dtype(dtype).seed(7).write(dir.resolve(dtype.name()));
            LlamaConfig c = LlamaConfig.read(model);
            try (LlamaModel m = LlamaModel.load(model, Device.cpu(), Precision.F16);
                 WeightSource w = Checkpoints.open(model)) {
                for (Map.Entry<String, NDArray> e : m.storedWeights().entrySet()) {
                    NDArray a = e.getValue();
                    float[] file = w.readFloats(e.getKey()); // the file's values, widened exactly
                    if (a.getDataType() == DataType.FLOAT32) {
                        assertTrue(e.getKey().contains("norm"), e.getKey() + " kept F32");
                        continue;
                    }
                    assertEquals(DataType.FLOAT16, a.getDataType(), e.getKey());
                    short[] got = bits(a);
                    long[] shape = w.info(e.getKey()).shape();
                    boolean t = LlamaModel.isTransposed(e.getKey());
                    for (int r = 0; r < shape[0]; r++) {
                        for (int col = 0; col < shape[1]; col++) {
                            double want = nearestF16(file[(int) (r * shape[1] + col)]);
                            int at = (int) (t ? col * shape[0] + r : r * shape[1] + col);
                            assertEquals(want, f16(got[at]), 0.0, dtype + " " + e.getKey() + "[" + r + "," + col + "]");
                        }
                    }
                    if (dtype == DType.F16) { // an F16 file is copied bit for bit (the sign of zero included)
                        for (int r = 0; r < shape[0]; r++) {
                            for (int col = 0; col < shape[1]; col++) {
                                int at = (int) (t ? col * shape[0] + r : r * shape[1] + col);
                                assertEquals(Float.floatToIntBits(file[(int) (r * shape[1] + col)]),
                                        Float.floatToIntBits(f16(got[at])), e.getKey());
                            }
                        }
                    }
                }
                assertEquals(c.numLayers(), m.layers().size());
            }
        }
    }

    @Test
    void bf16ValuesInF16RangeConvertExactlyAndTinyOnesAreCounted(@TempDir Path dir) throws Exception {
        float[] v = new float[4096];
        Random r = new Random(3);
        for (int i = 0; i < v.length; i++) {
            v[i] = molt.teacher.io.Floats.bf16ToFloat(molt.teacher.io.Floats.floatToBf16((float) (0.02 * r.nextGaussian())));
        }
        v[0] = 3e-6f; // a BF16 value below 2^-17: F16 cannot hold all its bits
        v[1] = 1e-9f; // flushed to zero
        Path f = dir.resolve("w.safetensors");
        SafetensorsWriter.write(f, java.util.List.of(SafetensorsWriter.Tensor.ofFloats("w", DType.BF16,
                new long[] {64, 64}, v)), Map.of());
        HalfConversion conv = new HalfConversion();
        try (SafetensorsFile file = SafetensorsFile.open(f); NDManager m = NDManager.newBaseManager()) {
            float[] exact = file.readFloats("w");
            NDArray a = HalfArrays.read(m, file, "w", false, conv);
            short[] got = bits(a);
            long inexact = 0;
            for (int i = 0; i < exact.length; i++) {
                double want = nearestF16(exact[i]);
                assertEquals(want, f16(got[i]), 0.0, "element " + i);
                if (want != exact[i]) {
                    inexact++;
                } else {
                    assertEquals(exact[i], f16(got[i]), 0.0);
                }
            }
            assertEquals(inexact, conv.inexact());
            assertTrue(conv.inexact() >= 2 && conv.flushed() >= 1, conv.summary());
            assertTrue(conv.relativeError() < 1e-4, conv.summary());
            conv.check(f, "w"); // within tolerance: accepted
        }
    }

    @Test
    void valuesF16CannotHoldAreRefusedNamingTheTensor(@TempDir Path dir) {
        TinyCheckpoints spec = TinyCheckpoints.builder().dtype(DType.F32);
        Path model = spec.write(dir.resolve("big"));
        // Rewrite one projection with a value beyond F16's range.
        LlamaConfig c = LlamaConfig.read(model);
        Map<String, float[]> w = spec.weights();
        w.get("model.layers.1.mlp.up_proj.weight")[5] = 1e5f;
        rewrite(model, c, w);
        InputException e = assertThrows(InputException.class, () -> LlamaModel.load(model, Device.cpu(), Precision.F16));
        assertTrue(e.getMessage().contains("model.layers.1.mlp.up_proj.weight") && e.getMessage().contains("65504"),
                e.getMessage());
        // A tensor of tiny values loses most of its bits in F16: refused too.
        Map<String, float[]> tiny = spec.weights();
        float[] q = tiny.get("model.layers.0.self_attn.q_proj.weight");
        for (int i = 0; i < q.length; i++) {
            q[i] *= 1e-5f;
        }
        rewrite(model, c, tiny);
        e = assertThrows(InputException.class, () -> LlamaModel.load(model, Device.cpu(), Precision.F16));
        assertTrue(e.getMessage().contains("model.layers.0.self_attn.q_proj.weight")
                && e.getMessage().contains("relative"), e.getMessage());
        // F32 still loads it.
        LlamaModel.load(model, Device.cpu(), Precision.F32).close();
    }

    private static void rewrite(Path model, LlamaConfig c, Map<String, float[]> w) {
        java.util.List<SafetensorsWriter.Tensor> t = new java.util.ArrayList<>();
        Map<String, long[]> shapes = molt.teacher.LlamaWeights.expected(c);
        w.forEach((n, v) -> t.add(SafetensorsWriter.Tensor.ofFloats(n, DType.F32, shapes.get(n), v)));
        try {
            SafetensorsWriter.write(model.resolve("model.safetensors"), t, Map.of());
        } catch (java.io.IOException ex) {
            throw new java.io.UncheckedIOException(ex);
        }
    }

    private static float[] logits(LlamaModel m, long[][] toks) {
        try (NDManager out = NDManager.newBaseManager()) {
            return m.forward(out, toks, Taps.Request.none()).logits().toFloatArray();
        }
    }

    @Test
    void widenedF16WeightsGiveTheF32LogitsExactly(@TempDir Path dir) {
        // Weights that F16 holds exactly: widening gives the F32 model's weights, so the logits are bit-identical.
        for (boolean tie : new boolean[] {false, true}) {
            Path model = TinyCheckpoints.builder().dtype(DType.F16).tie(tie).write(dir.resolve("f16-" + tie));
            long[][] toks = {{1, 5, 9, 3, 17, 22, 40, 7}};
            LlamaConfig c = LlamaConfig.read(model);
            try (WeightSource w = Checkpoints.open(model);
                 LlamaModel f32 = LlamaModel.load(model, Device.cpu(), Precision.F32);
                 LlamaModel f16 = LlamaModel.fromWeights(c, w, Device.cpu(), false, Precision.F16, Frozen.WIDEN)) {
                assertTrue(java.util.Arrays.equals(logits(f32, toks), logits(f16, toks)), "tie " + tie);
            }
        }
    }

    @Test
    void bf16TeacherLogitsMatchTheF32ReferenceToSixteenBitTolerance(@TempDir Path dir) {
        Path model = TinyCheckpoints.builder().dtype(DType.BF16).hidden(64).heads(4, 2).intermediate(160)
                .write(dir.resolve("bf16"));
        long[][] toks = {{1, 5, 9, 3, 17, 22, 40, 7, 11, 2}};
        try (WeightSource w = Checkpoints.open(model)) {
            LlamaConfig c = LlamaConfig.read(model);
            double[] want = ReferenceLlama.flat(new ReferenceLlama(c, w).forward(toks[0]));
            for (Frozen mode : Frozen.values()) {
                try (LlamaModel m = LlamaModel.fromWeights(c, w, Device.cpu(), false, Precision.F16, mode)) {
                    double err = ReferenceLlama.relErr(logits(m, toks), want);
                    // WIDEN: weights within F16 rounding of the file, products in F32. HALF (on CPU the BF16
                    // products of AMX machines): activations and products rounded to BF16 too, a few ulps of 2^-8.
                    double tol = mode == Frozen.WIDEN ? 1e-3 : 1e-2;
                    assertTrue(err < tol, mode + ": relative error " + err);
                }
            }
        }
    }

    @Test
    void theGpusF16ProductMatchesDoubleLoopsToF16Rounding() {
        // The GPU's form of 16-bit products (on CPU, 16-bit weights multiply in BF16 or widened): x and the product
        // rounded to F16, so a few units of 2^-11.
        Random r = new Random(5);
        int n = 6;
        int in = 48;
        int out = 20;
        float[] x = new float[n * in];
        float[] w = new float[in * out];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray w16 = m.create(w, new ai.djl.ndarray.types.Shape(in, out)).toType(DataType.FLOAT16, false);
            float[] stored = w16.toType(DataType.FLOAT32, false).toFloatArray();
            NDArray y = LlamaBlocks.f16Product(m.create(x, new ai.djl.ndarray.types.Shape(n, in)), w16);
            assertEquals(DataType.FLOAT32, y.getDataType());
            double[] want = new double[n * out];
            for (int i = 0; i < n; i++) {
                for (int o = 0; o < out; o++) {
                    for (int k = 0; k < in; k++) {
                        want[i * out + o] += (double) x[i * in + k] * stored[k * out + o];
                    }
                }
            }
            double err = ReferenceLlama.relErr(y.toFloatArray(), want);
            assertTrue(err < 2e-3 && err > 1e-6, "relative error " + err);
        }
    }

    @Test
    void sixteenBitForwardsLeaveNoArraysBehind(@TempDir Path dir) {
        Path model = TinyCheckpoints.builder().dtype(DType.BF16).tie(true).write(dir.resolve("leak"));
        long[][] toks = {{1, 2, 3, 4, 5, 6}};
        try (LlamaModel m = LlamaModel.load(model, Device.cpu(), Precision.F16)) {
            logits(m, toks);
            int before = m.manager().getManagedArrays().size();
            for (int i = 0; i < 5; i++) {
                logits(m, toks);
            }
            assertEquals(before, m.manager().getManagedArrays().size());
        }
    }

    @Test
    void precisionSettings() {
        assertEquals(Precision.F32, Precision.resolve("auto", 10_000_000));
        assertEquals(Precision.F16, Precision.resolve("auto", 135_000_000));
        assertEquals(Precision.F16, Precision.resolve("F16", 1));
        assertEquals(Precision.F32, Precision.resolve("f32", 1_000_000_000L));
        InputException e = assertThrows(InputException.class, () -> Precision.resolve("bf16", 1));
        assertTrue(e.getMessage().contains("expected f32, f16 or auto"), e.getMessage());
    }

    @Test
    void productsAreNamedForRunHeaders() {
        assertEquals("f32", Frozen.productsOn(molt.teacher.Precision.F32, false));
        assertEquals("f32", Frozen.productsOn(molt.teacher.Precision.F32, true));
        assertEquals("f16", Frozen.productsOn(molt.teacher.Precision.F16, true));
        assertEquals(molt.teacher.nd.Bf16Products.fast() ? "bf16" : "f32-widened",
                Frozen.productsOn(molt.teacher.Precision.F16, false));
    }

    /**
     * On CPU a decoding step's product (x [B, 1, in], no autograd) takes F16 where the CPU has F16 arithmetic, and
     * every other 16-bit product BF16: the routing, checked against each form's own result.
     */
    @Test
    void decodingStepsMultiplyInF16WhereTheCpuHasIt() {
        java.util.Random r = new java.util.Random(9);
        float[] w = new float[48 * 20];
        float[] x = new float[3 * 5 * 48];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        try (ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager()) {
            ai.djl.ndarray.NDArray wT = m.create(w, new ai.djl.ndarray.types.Shape(48, 20))
                    .toType(ai.djl.ndarray.types.DataType.FLOAT16, false);
            ai.djl.ndarray.NDArray step = m.create(x, new ai.djl.ndarray.types.Shape(3, 5, 48)).get(":, 0:1, :")
                    .duplicate(); // [3, 1, 48]: one position per sequence
            ai.djl.ndarray.NDArray many = m.create(x, new ai.djl.ndarray.types.Shape(3, 5, 48));
            boolean was = ai.djl.pytorch.jni.JniUtils.isGradMode();
            ai.djl.pytorch.jni.JniUtils.setGradMode(false);
            try {
                boolean f16 = molt.teacher.nd.Bf16Products.f16Fast();
                assertTrue(LlamaBlocks.linear(step, wT, null).contentEquals(f16 ? LlamaBlocks.f16Product(step, wT)
                        : molt.teacher.nd.Bf16Products.product(step, wT)), "a decoding step");
                // beyond F16's range (65504) the step's product is taken in BF16, whose range is F32's
                ai.djl.ndarray.NDArray big = step.mul(1e5f);
                ai.djl.ndarray.NDArray y = LlamaBlocks.linear(big, wT, null);
                assertTrue(y.isInfinite().any().getBoolean() == false && y.isNaN().any().getBoolean() == false,
                        "finite where F16 overflows");
                assertTrue(y.contentEquals(molt.teacher.nd.Bf16Products.product(big, wT)), "the BF16 product");
                assertTrue(LlamaBlocks.linear(many, wT, null).contentEquals(molt.teacher.nd.Bf16Products.product(many,
                        wT)), "five positions: BF16");
            } finally {
                ai.djl.pytorch.jni.JniUtils.setGradMode(was);
            }
            try (ai.djl.training.GradientCollector gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                assertTrue(LlamaBlocks.linear(step, wT, null).contentEquals(molt.teacher.nd.Bf16Products.product(step,
                        wT)), "with autograd on: BF16");
            }
        }
    }
}
