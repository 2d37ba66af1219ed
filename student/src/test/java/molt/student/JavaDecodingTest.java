package molt.student;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import molt.student.lora.LoraConfig;
import molt.student.mixer.MixerSettings;
import molt.teacher.model.DecodeEngine;
import molt.teacher.model.DecoderState;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.LlamaModel;
import molt.teacher.testing.ReferenceLlama;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Students decoding in plain Java (hedgehog, hedgehog_window, the windowed mixers, Mamba-2, Gated DeltaNet and kept
 * softmax layers) against the engine's steps and the parallel forward, with LoRA merged, GQA, windows that fill and
 * slide many times.
 */
class JavaDecodingTest {
    /** Feature dim 4, window 5, chunk 8: a 70-token sequence slides the window many times. */
    private static final MixerSettings SETTINGS = new MixerSettings(4, 5, 8, -1.0);
    private static final int T = 70;

    @TempDir
    static Path tmp;
    static Path gqa;
    static Path mha;

    @BeforeAll
    static void teachers() {
        gqa = TinyCheckpoints.builder().layers(3).heads(4, 2).write(tmp.resolve("gqa"));
        mha = TinyCheckpoints.builder().layers(3).heads(4, 4).write(tmp.resolve("mha"));
    }

    private static StudentModel student(Path teacher, List<String> plan, boolean lora) {
        StudentModel s = StudentModel.create(LlamaModel.load(teacher, Device.cpu()), teacher, new StudentPlan(plan),
                SETTINGS);
        randomize(s.mixerParameters(), 11, 0.5);
        if (lora) {
            s.enableLora(new LoraConfig(2, 4, 0, List.of("q", "k", "v", "o", "gate", "up", "down")), 5);
            randomize(s.loraParameters(), 12, 0.3); // B != 0: the update changes the function
        }
        return s;
    }

    private static void randomize(Map<String, NDArray> params, long seed, double sd) {
        Random r = new Random(seed);
        for (NDArray p : params.values()) {
            float[] v = new float[Math.toIntExact(p.size())];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (sd * r.nextGaussian());
            }
            p.set(v);
        }
    }

    private static long[] tokens(int t, int vocab, long seed) {
        return TinyCheckpoints.randomTokens(t, vocab, seed);
    }

    /** Logits [t, V]: prefill p tokens, single steps up to {@code many}, the rest in one call. */
    private static float[] decode(LanguageModel m, DecodeEngine engine, long[] toks, int p, int many, String where) {
        int v = m.config().vocabSize();
        float[] out = new float[toks.length * v];
        m.setDecodeEngine(engine);
        try (NDManager nd = NDManager.newBaseManager(Device.cpu()); DecoderState st = (DecoderState) m.newState()) {
            System.arraycopy(m.decode(nd, st, new long[][] {Arrays.copyOf(toks, p)}).toFloatArray(), 0, out, 0, p * v);
            for (int i = p; i < many; i++) {
                System.arraycopy(m.decode(nd, st, new long[][] {{toks[i]}}).toFloatArray(), 0, out, i * v, v);
            }
            long[] rest = Arrays.copyOfRange(toks, many, toks.length);
            System.arraycopy(m.decode(nd, st, new long[][] {rest}).toFloatArray(), 0, out, many * v, rest.length * v);
            assertEquals(where, st.engine());
        } finally {
            m.setDecodeEngine(DecodeEngine.AUTO);
        }
        return out;
    }

    private static double relErr(float[] a, float[] b) {
        return ReferenceLlama.relErr(a, b);
    }

    private static float[] parallel(StudentModel s, long[] toks) {
        try (NDManager nd = NDManager.newBaseManager(Device.cpu())) {
            return s.logits(nd, new long[][] {toks}).toFloatArray();
        }
    }

    @ParameterizedTest(name = "prefill {0}")
    @ValueSource(ints = {1, 3, 5, 6, 17})
    void hybridWithLoraDecodesInJavaLikeTheEngine(int prefill) {
        for (Path teacher : new Path[] {gqa, mha}) {
            try (StudentModel s = student(teacher, List.of("hedgehog_window", "softmax", "hedgehog"), true)) {
                long[] toks = tokens(T, s.config().vocabSize(), prefill);
                float[] full = parallel(s, toks);
                float[] engine = decode(s, DecodeEngine.DJL, toks, prefill, 50, "djl");
                float[] java = decode(s, DecodeEngine.JAVA, toks, prefill, 50, "java");
                double vsEngine = relErr(java, engine);
                double vsFull = relErr(java, full);
                assertTrue(vsEngine < 1e-5, teacher.getFileName() + " prefill " + prefill + ": java vs engine "
                        + vsEngine);
                assertTrue(vsFull < 1e-4, teacher.getFileName() + " prefill " + prefill + ": java vs parallel "
                        + vsFull);
            }
        }
    }

    @ParameterizedTest(name = "prefill {0}")
    @ValueSource(ints = {1, 2, 5, 9})
    void stateSpaceAndWindowedStudentsDecodeInJavaLikeTheEngine(int prefill) {
        List<List<String>> plans = List.of(List.of("mamba2_window", "gated_deltanet_window", "window_only"),
                List.of("mamba2", "gated_deltanet", "retention"), List.of("gla", "gla_liger", "gla_liger_window"));
        for (Path teacher : new Path[] {gqa, mha}) {
            for (List<String> plan : plans) {
                try (StudentModel s = student(teacher, plan, true)) {
                    long[] toks = tokens(40, s.config().vocabSize(), prefill + 7);
                    float[] full = parallel(s, toks);
                    float[] engine = decode(s, DecodeEngine.DJL, toks, prefill, 30, "djl");
                    float[] java = decode(s, DecodeEngine.JAVA, toks, prefill, 30, "java");
                    String what = teacher.getFileName() + " " + plan + " prefill " + prefill;
                    assertTrue(relErr(java, engine) < 1e-5, what + ": java vs engine " + relErr(java, engine));
                    assertTrue(relErr(java, full) < 1e-4, what + ": java vs parallel " + relErr(java, full));
                }
            }
        }
    }

    @Test
    void stateSpaceStateBytesMatchTheEngine() {
        try (StudentModel s = student(gqa, List.of("mamba2_window", "gated_deltanet", "retention"), false);
             NDManager nd = NDManager.newBaseManager(Device.cpu())) {
            long[] bytes = new long[2];
            for (DecodeEngine e : new DecodeEngine[] {DecodeEngine.DJL, DecodeEngine.JAVA}) {
                s.setDecodeEngine(e);
                try (DecoderState st = s.newState()) {
                    s.decode(nd, st, new long[][] {tokens(12, 64, 1)}).close();
                    for (int j = 0; j < 9; j++) {
                        s.decode(nd, st, new long[][] {{j}}).close();
                    }
                    bytes[e.ordinal() - 1] = st.bytes();
                    assertEquals(e.setting(), st.engine());
                }
            }
            s.setDecodeEngine(DecodeEngine.AUTO);
            assertEquals(bytes[0], bytes[1], "engine vs java");
        }
    }

    @Test
    void stateBytesMatchTheEngineAndStopGrowing() {
        try (StudentModel s = student(gqa, List.of("hedgehog_window", "hedgehog_window", "hedgehog"), false);
             NDManager nd = NDManager.newBaseManager(Device.cpu())) {
            long[] bytes = new long[4];
            int i = 0;
            for (DecodeEngine e : new DecodeEngine[] {DecodeEngine.DJL, DecodeEngine.JAVA}) {
                s.setDecodeEngine(e);
                for (int context : new int[] {3, 40}) {
                    try (DecoderState st = s.newState()) {
                        s.decode(nd, st, new long[][] {tokens(context, 64, context)}).close();
                        for (int j = 0; j < 20; j++) {
                            s.decode(nd, st, new long[][] {{j}}).close();
                        }
                        bytes[i++] = st.bytes();
                    }
                }
            }
            s.setDecodeEngine(DecodeEngine.AUTO);
            assertEquals(bytes[0], bytes[2], "engine vs java after 23 tokens");
            assertEquals(bytes[1], bytes[3], "engine vs java after 60 tokens");
            assertEquals(bytes[0], bytes[1], "the state stops growing once the window is full");
        }
    }

    @Test
    void changedAdaptersAreMergedAgainEveryMixerHasAJavaFormAndBatchesStayOnTheEngine() {
        try (StudentModel s = student(gqa, List.of("hedgehog_window", "softmax", "hedgehog"), true)) {
            long[] toks = tokens(20, s.config().vocabSize(), 3);
            decode(s, DecodeEngine.AUTO, toks, 4, 10, "java"); // merges the adapters as they are now
            s.setLoraTrainable(true);
            randomize(s.loraParameters(), 99, 0.3);
            s.setLoraTrainable(false);
            float[] java = decode(s, DecodeEngine.AUTO, toks, 4, 10, "java");
            assertTrue(relErr(java, parallel(s, toks)) < 1e-4, "after new adapter values");
        }
        // Every registered mixer has a Java form; a batch of two sequences stays on the engine.
        for (String mixer : molt.student.mixer.MixerRegistry.names()) {
            try (StudentModel s = student(gqa, List.of(mixer, mixer, "softmax"), false);
                 NDManager nd = NDManager.newBaseManager(Device.cpu()); DecoderState st = s.newState()) {
                s.decode(nd, st, new long[][] {{1, 2}}).close();
                s.decode(nd, st, new long[][] {{3}}).close();
                assertEquals("java", st.engine(), mixer);
            }
        }
        try (StudentModel s = student(gqa, List.of("hedgehog_window", "gla", "softmax"), false);
             NDManager nd = NDManager.newBaseManager(Device.cpu()); DecoderState st = s.newState()) {
            s.decode(nd, st, new long[][] {{1, 2}, {3, 4}}).close();
            s.decode(nd, st, new long[][] {{5}, {6}}).close();
            assertEquals("djl", st.engine());
        }
    }
}
