package molt.teacher.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.nio.file.Path;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.io.Checkpoints;
import molt.teacher.io.DType;
import molt.teacher.io.WeightSource;
import molt.teacher.testing.MapWeightSource;
import molt.teacher.testing.ReferenceLlama;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class LlamaModelTest {
    private static final double TOL = 1e-4;

    static Stream<Arguments> variants() {
        return Stream.of(
                Arguments.of("gqa", TinyCheckpoints.builder()),
                Arguments.of("mha-untied", TinyCheckpoints.builder().heads(4, 4)),
                Arguments.of("tied", TinyCheckpoints.builder().tie(true)),
                Arguments.of("llama3-rope", TinyCheckpoints.builder().llama3Scaling(8, 1, 4, 16).ropeTheta(500000)),
                Arguments.of("linear-rope", TinyCheckpoints.builder().linearScaling(4)),
                Arguments.of("biases", TinyCheckpoints.builder().attentionBias(true).mlpBias(true)),
                Arguments.of("head-dim", TinyCheckpoints.builder().headDim(12).heads(4, 1)),
                Arguments.of("qwen2", TinyCheckpoints.builder().modelType("qwen2")),
                Arguments.of("bf16", TinyCheckpoints.builder().dtype(DType.BF16)),
                Arguments.of("f16-sharded", TinyCheckpoints.builder().dtype(DType.F16).shards(3)));
    }

    private static long[][] tokens(int b, int t, int vocab, long seed) {
        Random r = new Random(seed);
        long[][] x = new long[b][t];
        for (long[] row : x) {
            for (int i = 0; i < t; i++) {
                row[i] = r.nextInt(vocab);
            }
        }
        return x;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variants")
    void forwardMatchesTheDoubleReference(String name, TinyCheckpoints spec, @TempDir Path dir) {
        Path model = spec.write(dir.resolve(name));
        long[][] toks = tokens(2, 9, 64, 3);
        try (LlamaModel m = LlamaModel.load(model, Device.cpu());
             NDManager out = NDManager.newBaseManager(Device.cpu());
             WeightSource w = Checkpoints.open(model)) {
            NDArray logits = m.forward(out, toks, Taps.Request.none()).logits();
            assertEquals(new ai.djl.ndarray.types.Shape(2, 9, 64), logits.getShape());
            float[] got = logits.toFloatArray();
            ReferenceLlama ref = new ReferenceLlama(m.config(), w);
            int per = 9 * 64;
            for (int b = 0; b < 2; b++) {
                double[] want = ReferenceLlama.flat(ref.forward(toks[b]));
                float[] row = java.util.Arrays.copyOfRange(got, b * per, (b + 1) * per);
                double err = ReferenceLlama.relErr(row, want);
                assertTrue(err < TOL, name + " sequence " + b + ": relative error " + err);
            }
        }
    }

    @Test
    void tapsMatchTheReference() {
        TinyCheckpoints spec = TinyCheckpoints.builder().heads(4, 2).layers(3);
        MapWeightSource w = MapWeightSource.of(spec);
        LlamaConfig c = LlamaConfig.fromJson(spec.configJson(), Path.of("config.json"));
        long[][] toks = tokens(1, 11, 64, 5);
        try (LlamaModel m = LlamaModel.fromWeights(c, w, Device.cpu());
             NDManager out = NDManager.newBaseManager(Device.cpu())) {
            LlamaModel.Output o = m.forward(out, toks, new Taps.Request(Set.of(0, 2), true, true, true, true, false));
            assertNull(o.logits());
            assertEquals(Set.of(0, 2), o.taps().keySet());
            ReferenceLlama ref = new ReferenceLlama(c, w);
            ref.forward(toks[0]);
            for (int l : new int[] {0, 2}) {
                Taps.Layer t = o.taps().get(l);
                check("hidden", t.hidden(), ref.hidden[l]);
                check("q", t.q(), ref.q[l]);
                check("k", t.k(), ref.k[l]);
                check("v", t.v(), ref.v[l]);
                check("attention output", t.attentionOutput(), ref.attnOut[l]);
                check("attention weights", t.attentionWeights(), ref.attnWeights[l]);
                assertEquals(new ai.djl.ndarray.types.Shape(1, 11, 4, 8), t.attentionOutput().getShape());
                assertEquals(new ai.djl.ndarray.types.Shape(1, 2, 11, 8), t.k().getShape());
            }
        }
    }

    /** A pass in place (autograd off: the default) gives the very values of the same pass with fresh arrays. */
    @Test
    void passesInPlaceGiveTheSameValues() {
        TinyCheckpoints spec = TinyCheckpoints.builder().heads(4, 2).layers(3);
        LlamaConfig c = LlamaConfig.fromJson(spec.configJson(), Path.of("config.json"));
        long[][] toks = tokens(2, 11, 64, 7);
        try (LlamaModel m = LlamaModel.fromWeights(c, MapWeightSource.of(spec), Device.cpu());
             NDManager out = NDManager.newBaseManager(Device.cpu())) {
            java.util.List<AttentionCore> cores = java.util.Collections.nCopies(3, new SoftmaxAttention(Device.cpu()));
            LayerPass inPlace = LayerPass.parallel(Projector.PLAIN);
            LayerPass plain = LayerPass.parallel(Projector.PLAIN);
            LayerPass fresh = new LayerPass() {
                @Override
                public Projector projector() {
                    return Projector.PLAIN;
                }

                @Override
                public long start() {
                    return 0;
                }

                @Override
                public NDArray attend(NDManager scope, int layer, AttentionCore core, AttentionInput in) {
                    return plain.attend(scope, layer, core, in);
                }

                @Override
                public boolean inPlace() {
                    return false;
                }
            };
            assertTrue(inPlace.inPlace(), "autograd is off here: passes work in place");
            NDArray a = m.run(out, toks, cores, inPlace);
            NDArray b = m.run(out, toks, cores, fresh);
            assertTrue(a.contentEquals(b), "logits in place and with fresh arrays");
            assertEquals(m.forward(out, toks, Taps.Request.none()).logits().toFloatArray().length, a.size());
        }
    }

    private static void check(String what, NDArray got, Object want) {
        double err = ReferenceLlama.relErr(got.toFloatArray(), ReferenceLlama.flat(want));
        assertTrue(err < TOL, what + ": relative error " + err);
    }

    @Test
    void smolLm2ShapeWithRandomWeights() {
        // SmolLM2-135M's config.json values, random weights.
        TinyCheckpoints spec = TinyCheckpoints.builder().vocab(49152).hidden(576).layers(30).heads(9, 3)
                .intermediate(1536).tie(true).ropeTheta(100000).eps(1e-5).scale(0.02);
        LlamaConfig c = LlamaConfig.fromJson(spec.configJson(), Path.of("config.json"));
        assertEquals(64, c.headDim());
        MapWeightSource w = MapWeightSource.of(spec);
        long[][] toks = tokens(1, 5, 49152, 9);
        try (LlamaModel m = LlamaModel.fromWeights(c, w, Device.cpu());
             NDManager out = NDManager.newBaseManager(Device.cpu())) {
            float[] got = m.forward(out, toks, Taps.Request.none()).logits().toFloatArray();
            double[] want = ReferenceLlama.flat(new ReferenceLlama(c, w).forward(toks[0]));
            double err = ReferenceLlama.relErr(got, want);
            assertTrue(err < TOL, "relative error " + err);
        }
    }

    @ParameterizedTest(name = "kv heads {0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {2, 4})
    void cachedDecodingReproducesTheFullForward(int kvHeads) {
        TinyCheckpoints spec = TinyCheckpoints.builder().llama3Scaling(8, 1, 4, 16).heads(4, kvHeads);
        LlamaConfig c = LlamaConfig.fromJson(spec.configJson(), Path.of("config.json"));
        long[][] toks = tokens(2, 10, 64, 8);
        try (LlamaModel m = LlamaModel.fromWeights(c, MapWeightSource.of(spec), Device.cpu());
             NDManager out = NDManager.newBaseManager(Device.cpu());
             DecoderState cache = m.newState()) {
            float[] full = m.forward(out, toks, Taps.Request.none()).logits().toFloatArray();
            long[][] prompt = {java.util.Arrays.copyOf(toks[0], 6), java.util.Arrays.copyOf(toks[1], 6)};
            NDArray pre = m.decode(out, cache, prompt);
            double[] want = new double[2 * 10 * 64];
            float[] got = new float[want.length];
            float[] p = pre.toFloatArray();
            for (int b = 0; b < 2; b++) {
                for (int t = 0; t < 6; t++) {
                    for (int v = 0; v < 64; v++) {
                        got[(b * 10 + t) * 64 + v] = p[(b * 6 + t) * 64 + v];
                    }
                }
            }
            for (int t = 6; t < 10; t++) {
                float[] s = m.decode(out, cache, new long[][] {{toks[0][t]}, {toks[1][t]}}).toFloatArray();
                for (int b = 0; b < 2; b++) {
                    System.arraycopy(s, b * 64, got, (b * 10 + t) * 64, 64);
                }
            }
            assertEquals(10, cache.position());
            for (int i = 0; i < want.length; i++) {
                want[i] = full[i];
            }
            double err = ReferenceLlama.relErr(got, want);
            assertTrue(err < 1e-5, "decode vs full forward: relative error " + err);
        }
    }

    @Test
    void repeatedForwardsLeaveNoArraysBehind() {
        TinyCheckpoints spec = TinyCheckpoints.builder();
        LlamaConfig c = LlamaConfig.fromJson(spec.configJson(), Path.of("config.json"));
        long[][] toks = tokens(1, 8, 64, 1);
        try (LlamaModel m = LlamaModel.fromWeights(c, MapWeightSource.of(spec), Device.cpu());
             NDManager out = NDManager.newBaseManager(Device.cpu())) {
            int weights = m.manager().getManagedArrays().size();
            for (int i = 0; i < 5; i++) {
                LlamaModel.Output o = m.forward(out, toks, Taps.Request.attentionTransfer(true));
                o.taps().values().forEach(t -> Stream.of(t.hidden(), t.q(), t.k(), t.v(), t.attentionOutput(),
                        t.attentionWeights()).forEach(NDArray::close));
                m.forward(out, toks, Taps.Request.none()).logits().close();
                try (DecoderState cache = m.newState()) {
                    m.decode(out, cache, toks).close();
                    m.decode(out, cache, new long[][] {{3}}).close();
                }
                assertEquals(0, out.getManagedArrays().size(), "arrays left in the caller's manager");
                assertEquals(weights, m.manager().getManagedArrays().size(), "arrays added to the weights' manager");
            }
        }
    }

    @Test
    void badTokensAreInputErrors() {
        TinyCheckpoints spec = TinyCheckpoints.builder();
        LlamaConfig c = LlamaConfig.fromJson(spec.configJson(), Path.of("config.json"));
        try (LlamaModel m = LlamaModel.fromWeights(c, MapWeightSource.of(spec), Device.cpu());
             NDManager out = NDManager.newBaseManager(Device.cpu())) {
            assertThrows(InputException.class, () -> m.forward(out, new long[][] {{1, 64}}, Taps.Request.none()));
            assertThrows(InputException.class, () -> m.forward(out, new long[][] {{1, 2}, {3}}, Taps.Request.none()));
        }
    }

    @Test
    void savedWeightsReloadToTheSameModel(@TempDir Path dir) throws Exception {
        Path src = TinyCheckpoints.builder().attentionBias(true).dtype(DType.BF16).write(dir.resolve("src"));
        long[][] toks = tokens(1, 7, 64, 2);
        float[] want;
        try (LlamaModel m = LlamaModel.load(src, Device.cpu()); NDManager out = NDManager.newBaseManager(Device.cpu())) {
            want = m.logits(out, toks).toFloatArray();
            m.save(dir.resolve("copy"));
        }
        try (LlamaModel m = LlamaModel.load(dir.resolve("copy"), Device.cpu());
             NDManager out = NDManager.newBaseManager(Device.cpu())) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(want, m.logits(out, toks).toFloatArray());
        }
    }
}
