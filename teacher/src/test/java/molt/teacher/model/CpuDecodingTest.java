package molt.teacher.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import molt.teacher.LlamaConfig;
import molt.teacher.testing.MapWeightSource;
import molt.teacher.testing.ReferenceLlama;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Decoding steps in plain Java ({@link CpuDecoding}) against the engine's steps and the parallel forward. */
class CpuDecodingTest {
    private static final int T = 40;

    static Stream<Arguments> variants() {
        return Stream.of(
                Arguments.of("gqa", TinyCheckpoints.builder()),
                Arguments.of("mha-tied", TinyCheckpoints.builder().heads(4, 4).tie(true)),
                Arguments.of("llama3-rope", TinyCheckpoints.builder().llama3Scaling(8, 1, 4, 16).ropeTheta(500000)),
                Arguments.of("biases", TinyCheckpoints.builder().attentionBias(true).mlpBias(true)),
                Arguments.of("head-dim", TinyCheckpoints.builder().headDim(12).heads(4, 1).hidden(36)));
    }

    private static long[] tokens(int t, int vocab, long seed) {
        return TinyCheckpoints.randomTokens(t, vocab, seed);
    }

    private static LlamaModel model(TinyCheckpoints spec) {
        LlamaConfig c = LlamaConfig.fromJson(spec.configJson(), Path.of("config.json"));
        return LlamaModel.fromWeights(c, MapWeightSource.of(spec), Device.cpu());
    }

    /**
     * Logits [t, V] of prefill(first p tokens), then single steps, then the rest as one call of several tokens
     * (from {@code many} on), on {@code engine}; checks where the steps ran.
     */
    static float[] decodeAll(LanguageModel m, DecodeEngine engine, long[] toks, int p, int many, String expected) {
        int v = m.config().vocabSize();
        float[] out = new float[toks.length * v];
        m.setDecodeEngine(engine);
        try (NDManager nd = NDManager.newBaseManager(Device.cpu());
             LanguageModel.DecodingState st = m.newState()) {
            System.arraycopy(m.decode(nd, st, new long[][] {Arrays.copyOf(toks, p)}).toFloatArray(), 0, out,
                    0, p * v);
            for (int i = p; i < many; i++) {
                System.arraycopy(m.decode(nd, st, new long[][] {{toks[i]}}).toFloatArray(), 0, out, i * v, v);
            }
            long[] rest = Arrays.copyOfRange(toks, many, toks.length);
            NDArray r = m.decode(nd, st, new long[][] {rest});
            assertEquals(ai.djl.ndarray.types.Shape.class, r.getShape().getClass());
            assertEquals(rest.length, r.getShape().get(1), "logits [1, t, V] for t tokens");
            System.arraycopy(r.toFloatArray(), 0, out, many * v, rest.length * v);
            assertEquals(toks.length, st.position());
            assertEquals(expected, ((DecoderState) st).engine());
        } finally {
            m.setDecodeEngine(DecodeEngine.AUTO);
        }
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variants")
    void javaStepsMatchTheEngineAndTheParallelForward(String name, TinyCheckpoints spec) {
        try (LlamaModel m = model(spec); NDManager nd = NDManager.newBaseManager(Device.cpu())) {
            long[] toks = tokens(T, m.config().vocabSize(), 5);
            float[] full = m.logits(nd, new long[][] {toks}).toFloatArray();
            float[] engine = decodeAll(m, DecodeEngine.DJL, toks, 7, 30, "djl");
            float[] inJava = decodeAll(m, DecodeEngine.JAVA, toks, 7, 30, "java");
            assertTrue(ReferenceLlama.relErr(inJava, engine) < 1e-5,
                    name + ": java vs engine steps " + ReferenceLlama.relErr(inJava, engine));
            assertTrue(ReferenceLlama.relErr(inJava, full) < 1e-5,
                    name + ": java steps vs parallel forward " + ReferenceLlama.relErr(inJava, full));
            float[] auto = decodeAll(m, DecodeEngine.AUTO, toks, 1, 2, "java"); // prefill of one token, then Java
            assertTrue(ReferenceLlama.relErr(auto, full) < 1e-5);
        }
    }

    @Test
    void theCacheGrowsPastItsCapacityAndCountsTheSameBytes() {
        TinyCheckpoints spec = TinyCheckpoints.builder().maxPositions(1024);
        try (LlamaModel m = model(spec); NDManager nd = NDManager.newBaseManager(Device.cpu())) {
            long[] toks = tokens(600, m.config().vocabSize(), 9);
            float[] full = m.logits(nd, new long[][] {toks}).toFloatArray();
            // Prefill 250 (capacity 256), then 350 steps: the Java cache grows at 256, 512 and keeps order.
            float[] inJava = decodeAll(m, DecodeEngine.JAVA, toks, 250, 600, "java");
            assertTrue(ReferenceLlama.relErr(inJava, full) < 1e-5, "java vs parallel over 600 tokens");
            long[] bytes = new long[2];
            for (DecodeEngine e : new DecodeEngine[] {DecodeEngine.DJL, DecodeEngine.JAVA}) {
                m.setDecodeEngine(e);
                try (DecoderState st = m.newState()) {
                    m.decode(nd, st, new long[][] {Arrays.copyOf(toks, 300)}).close();
                    m.decode(nd, st, new long[][] {{1}}).close();
                    bytes[e.ordinal() - 1] = st.bytes();
                }
            }
            m.setDecodeEngine(DecodeEngine.AUTO);
            assertEquals(bytes[0], bytes[1], "state bytes, engine vs java");
            assertEquals(2L * 301 * m.config().kvDim() * m.config().numLayers() * Float.BYTES, bytes[1]);
        }
    }

    @Test
    void batchesGpuLikePrecisionsAndTrainingWeightsStayOnTheEngine() {
        TinyCheckpoints spec = TinyCheckpoints.builder();
        try (LlamaModel m = model(spec); NDManager nd = NDManager.newBaseManager(Device.cpu());
             DecoderState st = m.newState()) {
            long[][] two = {{1, 2, 3}, {4, 5, 6}};
            m.decode(nd, st, two).close();
            m.decode(nd, st, new long[][] {{7}, {8}}).close();
            assertEquals("djl", st.engine(), "a batch of 2 stays on the engine");
            m.setDecodeEngine(DecodeEngine.JAVA);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> {
                try (DecoderState s2 = m.newState()) {
                    m.decode(nd, s2, two).close();
                    m.decode(nd, s2, new long[][] {{7}, {8}}).close();
                }
            });
            assertTrue(e.getMessage().contains("a batch of 2"), e.getMessage());
        }
        LlamaConfig c = LlamaConfig.fromJson(spec.configJson(), Path.of("config.json"));
        try (LlamaModel m = LlamaModel.fromWeights(c, MapWeightSource.of(spec), Device.cpu(), true);
             NDManager nd = NDManager.newBaseManager(Device.cpu()); DecoderState st = m.newState()) {
            m.decode(nd, st, new long[][] {{1, 2}}).close();
            m.decode(nd, st, new long[][] {{3}}).close();
            assertEquals("djl", st.engine(), "weights that train stay on the engine");
        }
        try (LlamaModel m = LlamaModel.fromWeights(LlamaConfig.fromJson(spec.configJson(), Path.of("config.json")),
                MapWeightSource.of(spec), Device.cpu(), molt.teacher.Precision.F16);
             NDManager nd = NDManager.newBaseManager(Device.cpu()); DecoderState st = m.newState()) {
            m.decode(nd, st, new long[][] {{1, 2}}).close();
            m.decode(nd, st, new long[][] {{3}}).close();
            assertEquals("djl", st.engine(), "16-bit frozen weights stay on the engine");
        }
    }

    @Test
    void longJavaDecodingKeepsTheEngineArraysFlat() {
        try (LlamaModel m = model(TinyCheckpoints.builder().maxPositions(4096));
             NDManager nd = NDManager.newBaseManager(Device.cpu()); DecoderState st = m.newState()) {
            m.decode(nd, st, new long[][] {{1, 2, 3}}).close();
            int weights = m.manager().getManagedArrays().size();
            int before = nd.getManagedArrays().size();
            for (int i = 0; i < 2000; i++) {
                m.decode(nd, st, new long[][] {{i % 64}}).close();
            }
            assertEquals("java", st.engine());
            assertEquals(before, nd.getManagedArrays().size(), "arrays left in the caller's manager");
            assertEquals(weights, m.manager().getManagedArrays().size(), "arrays in the weights' manager");
        }
    }
}
