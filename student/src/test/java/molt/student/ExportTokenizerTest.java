package molt.student;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import molt.student.mixer.MixerSettings;
import molt.teacher.model.LlamaModel;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;
import molt.teacher.tokenizer.TextTokenizer;
import molt.teacher.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An export's tokenizer files load on their own the way lm-evaluation-harness's {@code local-completions} loads
 * them with transformers' AutoTokenizer: tokenizer_config.json names the class (the export's config.json names a
 * model type, molt_student, that transformers does not know) and BOS and EOS (which lm-eval reads from the
 * tokenizer). Python transformers is not installable on the machines molt is tested on; Hugging Face's
 * transformers.js, whose AutoTokenizer reads the same two files, is (npm), and CI installs it and sets
 * MOLT_REQUIRE_TRANSFORMERS_JS=1 so the cross-check runs there.
 */
class ExportTokenizerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> TEXTS = List.of("", "Hello, world!", "the theme of the thesis",
            "  spaces  and\ttabs\nnewlines", "Europäisches Parlament — séance", "日本語 🙂", "x<|eos|>y",
            "end <|endoftext|> start");

    @Test
    void theClassAndBosAndEosAreFilledInAndWhatTheBaseNamesIsKept(@TempDir Path dir) throws Exception {
        Path a = Files.createDirectories(dir.resolve("a"));
        new ByteTokenizer().save(a);
        Files.writeString(a.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\"}");
        ObjectNode config = JSON.createObjectNode().put("bos_token_id", 256);
        config.putArray("eos_token_id").add(257).add(3);
        StudentCheckpoint.completesTokenizerConfig(a, config);
        JsonNode c = JSON.readTree(a.resolve("tokenizer_config.json").toFile());
        assertEquals("PreTrainedTokenizerFast", c.path("tokenizer_class").asText());
        assertEquals("<s>", c.path("bos_token").asText(), "a named BOS is kept");
        assertEquals(ByteTokenizer.EOS_TOKEN, c.path("eos_token").asText(), "the first of a list of EOS ids");

        Path b = Files.createDirectories(dir.resolve("b"));
        Files.writeString(b.resolve("tokenizer.json"), bpeTokenizerJson());
        Files.writeString(b.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"GPT2TokenizerFast\"}");
        StudentCheckpoint.completesTokenizerConfig(b, JSON.createObjectNode().put("bos_token_id", 261)
                .put("eos_token_id", 33));
        c = JSON.readTree(b.resolve("tokenizer_config.json").toFile());
        assertEquals("GPT2TokenizerFast", c.path("tokenizer_class").asText());
        assertEquals("<|endoftext|>", c.path("bos_token").asText(), "an added token");
        assertEquals("!", c.path("eos_token").asText(), "a vocabulary entry");

        Path none = Files.createDirectories(dir.resolve("none")); // no tokenizer.json: nothing to describe
        StudentCheckpoint.completesTokenizerConfig(none, config);
        assertFalse(Files.exists(none.resolve("tokenizer_config.json")));
    }

    @Test
    void transformersJsLoadsExportsOfflineAndEncodesLikeMolt(@TempDir Path dir) throws Exception {
        Path install = transformersJs();
        // A base with molt's byte tokenizer (as teacher_pretrain writes it) and one with a byte-level BPE whose
        // tokenizer_config.json names neither class nor special tokens.
        Path byteBase = base(dir.resolve("byte-base"), ByteTokenizer.BOS, ByteTokenizer.EOS);
        new ByteTokenizer().save(byteBase);
        Path bpeBase = base(dir.resolve("bpe-base"), 261, 261);
        Files.writeString(bpeBase.resolve("tokenizer.json"), bpeTokenizerJson());
        Files.writeString(bpeBase.resolve("tokenizer_config.json"), "{\"model_max_length\": 4096}");

        Path texts = dir.resolve("texts.json");
        JSON.writeValue(texts.toFile(), TEXTS);
        for (Path base : List.of(byteBase, bpeBase)) {
            Path export = dir.resolve("export-of-" + base.getFileName());
            try (StudentModel s = StudentModel.create(LlamaModel.load(base, Device.cpu()), base,
                    new StudentPlan(List.of("hedgehog_window", "softmax")), new MixerSettings(4, 4, 8, -2.197))) {
                StudentCheckpoint.export(s, export, true, null, null);
            }
            JsonNode got = runNode(install, export, texts, dir.resolve("out.json"));
            String what = "transformers.js " + got.path("version").asText() + " loading " + export.getFileName();
            TextTokenizer molt = Tokenizers.load(export);
            long bos = JSON.readTree(base.resolve("config.json").toFile()).path("bos_token_id").asLong();
            long eos = JSON.readTree(base.resolve("config.json").toFile()).path("eos_token_id").asLong();
            assertEquals(bos, got.path("bos_token_id").asLong(-1), what + ": BOS id");
            assertEquals(eos, got.path("eos_token_id").asLong(-1), what + ": EOS id");
            for (int i = 0; i < TEXTS.size(); i++) {
                assertEquals(ids(molt.encode(TEXTS.get(i), true)), ids(got.path("with_special").get(i)),
                        what + ": '" + TEXTS.get(i) + "' with special tokens");
                assertEquals(ids(molt.encode(TEXTS.get(i), false)), ids(got.path("without_special").get(i)),
                        what + ": '" + TEXTS.get(i) + "' without special tokens");
            }
        }
    }

    /** A tiny random Llama checkpoint whose config.json names the given BOS and EOS ids. */
    private static Path base(Path dir, int bos, int eos) throws Exception {
        TinyCheckpoints.builder().layers(2).vocab(ByteTokenizer.VOCAB + 8).seed(3).write(dir);
        ObjectNode c = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
        c.put("bos_token_id", bos).put("eos_token_id", eos);
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), c);
        return dir;
    }

    /**
     * A GPT-2-style byte-level BPE: the 256 byte characters, merges for "th", "the", " t", "he" and " the", and
     * {@code <|endoftext|>} as an added token (id 261, after the vocabulary, like GPT-2's; it is both BOS and EOS,
     * and no post-processor adds it).
     */
    private static String bpeTokenizerJson() throws Exception {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        root.putArray("added_tokens").addObject().put("id", 261).put("content", "<|endoftext|>")
                .put("single_word", false).put("lstrip", false).put("rstrip", false).put("normalized", false)
                .put("special", true);
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", true);
        root.putNull("post_processor");
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true)
                .put("use_regex", true);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").putNull("dropout").putNull("unk_token").putNull("continuing_subword_prefix")
                .putNull("end_of_word_suffix").put("fuse_unk", false).put("byte_fallback", false);
        ObjectNode vocab = model.putObject("vocab");
        char[] chars = ByteTokenizer.byteChars();
        for (int b = 0; b < 256; b++) {
            vocab.put(String.valueOf(chars[b]), b);
        }
        String space = String.valueOf(chars[' ']);
        vocab.put("th", 256).put("the", 257).put(space + "t", 258).put("he", 259).put(space + "the", 260);
        model.putArray("merges").add("t h").add("th e").add(space + " t").add("h e").add(space + "t he");
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root);
    }

    private static List<Long> ids(long[] a) {
        List<Long> r = new ArrayList<>();
        for (long v : a) {
            r.add(v);
        }
        return r;
    }

    private static List<Long> ids(JsonNode a) {
        List<Long> r = new ArrayList<>();
        a.forEach(v -> r.add(v.asLong()));
        return r;
    }

    /**
     * The directory holding node_modules/@huggingface/transformers: MOLT_TRANSFORMERS_JS, else
     * ~/.cache/molt/transformers-js (where .ci/run installs it). Skipped when absent, unless
     * MOLT_REQUIRE_TRANSFORMERS_JS=1.
     */
    private static Path transformersJs() {
        String env = System.getenv("MOLT_TRANSFORMERS_JS");
        Path dir = env != null ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache", "molt", "transformers-js");
        boolean present = Files.isDirectory(dir.resolve("node_modules/@huggingface/transformers"));
        if (!"1".equals(System.getenv("MOLT_REQUIRE_TRANSFORMERS_JS"))) {
            assumeTrue(present, "transformers.js is not installed in " + dir + " (CI installs it)");
        }
        assertTrue(present, "MOLT_REQUIRE_TRANSFORMERS_JS=1 but " + dir + " has no @huggingface/transformers");
        return dir;
    }

    private static JsonNode runNode(Path install, Path model, Path texts, Path out) throws Exception {
        Path script = out.resolveSibling("load-tokenizer.mjs");
        try (var in = ExportTokenizerTest.class.getResourceAsStream("/transformers-js/load-tokenizer.mjs")) {
            Files.write(script, in.readAllBytes());
        }
        Files.deleteIfExists(out);
        Path log = out.resolveSibling("node.log");
        Process p = new ProcessBuilder("node", script.toString(), install.toString(), model.toString(),
                out.toString(), texts.toString()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "node did not finish");
        assertEquals(0, p.exitValue(), "node failed: " + Files.readString(log, StandardCharsets.UTF_8));
        return JSON.readTree(out.toFile());
    }
}
