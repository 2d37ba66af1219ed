package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import molt.teacher.LlamaConfig;
import molt.teacher.io.Checkpoints;
import molt.teacher.io.DType;
import molt.teacher.io.SafetensorsFile;
import molt.teacher.io.WeightSource;
import molt.teacher.testing.ReferenceLlama;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TeacherCommandsTest {
    @TempDir
    static Path tmp;
    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        model = TinyCheckpoints.builder().vocab(ByteTokenizer.VOCAB).dtype(DType.BF16).shards(2)
                .llama3Scaling(8, 1, 4, 32).write(tmp.resolve("teacher"));
        new ByteTokenizer().save(model);
    }

    private static double[] reference(long[] ids) {
        try (WeightSource w = Checkpoints.open(model)) {
            return ReferenceLlama.flat(new ReferenceLlama(LlamaConfig.read(model), w).forward(ids));
        }
    }

    @Test
    void logitsFromTokensMatchTheReference() {
        Path out = tmp.resolve("tokens.safetensors");
        CliTestSupport.Run r = CliTestSupport.run("logits", "--model", model.toString(), "--tokens", "5,17,3,200",
                "--out", out.toString());
        assertEquals(0, r.exit(), r.err());
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals(java.util.Set.of("logits"), f.names());
            assertArrayEquals(new long[] {4, ByteTokenizer.VOCAB}, f.info("logits").shape());
            assertEquals(DType.F32, f.info("logits").dtype());
            double err = ReferenceLlama.relErr(f.readFloats("logits"), reference(new long[] {5, 17, 3, 200}));
            assertTrue(err < 1e-4, "relative error " + err);
        }
    }

    @Test
    void logitsFromTextStoreTheIdsAndRecurrentModeAgrees() {
        Path out = tmp.resolve("text.safetensors");
        Path rec = tmp.resolve("text-rec.safetensors");
        assertEquals(0, CliTestSupport.run("logits", "--model", model.toString(), "--text", "Hé there",
                "--out", out.toString()).exit());
        assertEquals(0, CliTestSupport.run("logits", "--model", model.toString(), "--text", "Hé there",
                "--out", rec.toString(), "--mode", "recurrent").exit());
        long[] want = new ByteTokenizer().encode("Hé there", true);
        try (SafetensorsFile f = SafetensorsFile.open(out); SafetensorsFile g = SafetensorsFile.open(rec)) {
            assertArrayEquals(want, f.readLongs("input_ids"));
            assertEquals(DType.I64, f.info("input_ids").dtype());
            double err = ReferenceLlama.relErr(f.readFloats("logits"), reference(want));
            assertTrue(err < 1e-4, "relative error " + err);
            float[] a = g.readFloats("logits");
            double[] b = new double[a.length];
            float[] p = f.readFloats("logits");
            for (int i = 0; i < b.length; i++) {
                b[i] = p[i];
            }
            assertTrue(ReferenceLlama.relErr(a, b) < 1e-5);
        }
    }

    @Test
    void generateIsSeededAndReportsSpeed() {
        CliTestSupport.Run a = CliTestSupport.run("generate", "--model", model.toString(), "--prompt", "abc",
                "--max-tokens", "6", "--temperature", "0.8", "--top-p", "0.9", "--seed", "4");
        CliTestSupport.Run b = CliTestSupport.run("generate", "--model", model.toString(), "--prompt", "abc",
                "--max-tokens", "6", "--temperature", "0.8", "--top-p", "0.9", "--seed", "4");
        assertEquals(0, a.exit(), a.err());
        assertEquals(a.out(), b.out());
        assertTrue(a.err().contains("tokens/s"), a.err());
        CliTestSupport.Run greedy = CliTestSupport.run("generate", "--model", model.toString(), "--tokens", "1,2,3",
                "--max-tokens", "3");
        assertEquals(0, greedy.exit(), greedy.err());
        assertEquals(3, greedy.out().trim().split(",").length);
    }

    @Test
    void inspectDescribesTheModel() {
        CliTestSupport.Run r = CliTestSupport.run("inspect", "--model", model.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("model_type:        llama"), r.out());
        assertTrue(r.out().contains("dtype BF16"), r.out());
        assertTrue(r.out().contains("model-00002-of-00002.safetensors"), r.out());
        assertTrue(r.out().contains("llama3 scaling"), r.out());
    }

    @Test
    void badInputGivesOneLineExitTwoAndNoFile() throws Exception {
        Path out = tmp.resolve("never.safetensors");
        Path broken = tmp.resolve("broken");
        Files.createDirectories(broken);
        Files.writeString(broken.resolve("config.json"), "{\"model_type\": \"llama\", ");
        Path noWeights = TinyCheckpoints.builder().write(tmp.resolve("noweights"));
        Files.delete(noWeights.resolve("model.safetensors"));
        Path gpt2 = tmp.resolve("gpt2");
        Files.createDirectories(gpt2);
        Files.writeString(gpt2.resolve("config.json"), "{\"model_type\": \"gpt2\"}");
        List<String[]> cases = List.of(
                new String[] {"logits", "--model", model.toString(), "--tokens", "5,x", "--out", out.toString()},
                new String[] {"logits", "--model", model.toString(), "--tokens", "5,999", "--out", out.toString()},
                new String[] {"logits", "--model", model.toString(), "--out", out.toString()},
                new String[] {"logits", "--model", broken.toString(), "--tokens", "1", "--out", out.toString()},
                new String[] {"logits", "--model", gpt2.toString(), "--tokens", "1", "--out", out.toString()},
                new String[] {"logits", "--model", noWeights.toString(), "--tokens", "1", "--out", out.toString()},
                new String[] {"logits", "--model", tmp.resolve("nowhere").toString(), "--tokens", "1", "--out", out.toString()},
                new String[] {"logits", "--model", noWeights.toString(), "--text", "hi", "--out", out.toString()},
                new String[] {"logits", "--model", model.toString(), "--tokens", "1", "--out", out.toString(), "--device", "gpu:7"},
                new String[] {"logits", "--model", model.toString(), "--tokens", "1"},
                new String[] {"generate", "--model", model.toString(), "--prompt", "a", "--top-p", "0"},
                new String[] {"inspect", "--model", broken.toString()},
                new String[] {"nonsense"});
        for (String[] c : cases) {
            CliTestSupport.Run r = CliTestSupport.run(c);
            String label = String.join(" ", c);
            assertEquals(2, r.exit(), label + "\n" + r.err());
            assertFalse(r.err().contains("\tat "), label + ": no stack trace\n" + r.err());
            assertTrue(r.err().strip().lines().findFirst().orElse("").startsWith("molt: "), label + "\n" + r.err());
            assertFalse(Files.exists(out), label + " wrote a file");
        }
        CliTestSupport.Run debug = CliTestSupport.run("--debug", "logits", "--model", broken.toString(), "--tokens", "1",
                "--out", out.toString());
        assertEquals(2, debug.exit());
        assertTrue(debug.err().contains("\tat "), "--debug prints the trace");
    }

    @Test
    void evalReportsPerplexityRecallAndDecodeCost() {
        CliTestSupport.Run r = CliTestSupport.run("eval", "--model", model.toString(), "--data", "europarl-en",
                "--seq-len", "64", "--sequences", "2", "--distances", "16,32", "--probes", "1", "--contexts", "16,32",
                "--out", tmp.resolve("eval.json").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("perplexity") && r.out().contains("recall@32"), r.out());
        assertTrue(java.nio.file.Files.isRegularFile(tmp.resolve("eval.json")));
        assertEquals(2, CliTestSupport.run("eval", "--model", model.toString(), "--data", "europarl-en",
                "--distances", "4").exit());
        // Sizes beyond the model's 4096 positions are refused before any data or model is touched.
        for (String[] opt : new String[][] {{"--distances", "100000"}, {"--distances", "16,4090"},
            {"--contexts", "5000"}, {"--contexts", "4090"}}) {
            CliTestSupport.Run big = CliTestSupport.run("eval", "--model", model.toString(), "--data", "europarl-en",
                    opt[0], opt[1]);
            assertEquals(2, big.exit(), big.err());
            assertTrue(big.err().contains("max_position_embeddings 4096"), big.err());
        }
    }
}
