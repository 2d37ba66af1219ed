package molt.student;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An export's tokenizer_config.json names the tokenizer class, so that transformers' AutoTokenizer loads the export
 * directory on its own (its config.json's model type, molt_student, is unknown to transformers).
 */
class ExportTokenizerTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aTokenizerJsonGetsItsClassNamedAndANamedClassIsKept(@TempDir Path dir) throws Exception {
        Path a = Files.createDirectories(dir.resolve("a"));
        Files.writeString(a.resolve("tokenizer.json"), "{}");
        Files.writeString(a.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\"}");
        StudentCheckpoint.namesTokenizerClass(a);
        var c = JSON.readTree(a.resolve("tokenizer_config.json").toFile());
        assertEquals("PreTrainedTokenizerFast", c.path("tokenizer_class").asText());
        assertEquals("<s>", c.path("bos_token").asText());

        Path b = Files.createDirectories(dir.resolve("b"));
        Files.writeString(b.resolve("tokenizer.json"), "{}");
        Files.writeString(b.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"LlamaTokenizerFast\"}");
        StudentCheckpoint.namesTokenizerClass(b);
        assertEquals("LlamaTokenizerFast", JSON.readTree(b.resolve("tokenizer_config.json").toFile())
                .path("tokenizer_class").asText());

        Path none = Files.createDirectories(dir.resolve("none")); // molt's byte tokenizer: no tokenizer.json
        StudentCheckpoint.namesTokenizerClass(none);
        assertFalse(Files.exists(none.resolve("tokenizer_config.json")));
    }
}
