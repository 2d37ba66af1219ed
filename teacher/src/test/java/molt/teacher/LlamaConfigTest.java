package molt.teacher;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaConfigTest {
    private static final String LLAMA32_1B = """
            {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
             "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
             "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
             "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
             "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
               "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 128256}
            """;

    private static Path write(Path dir, String json) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), json);
        return dir;
    }

    @Test
    void readsARealLlamaConfig(@TempDir Path dir) throws Exception {
        LlamaConfig c = LlamaConfig.read(write(dir, LLAMA32_1B));
        assertEquals(64, c.headDim());
        assertEquals(4, c.kvGroups());
        assertEquals("llama3", c.ropeScaling().type());
        assertEquals(8192, c.ropeScaling().originalMaxPositionEmbeddings());
        assertArrayEquals(new long[] {128001, 128008, 128009}, c.eosTokenIds());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(1_235_814_400L, LlamaWeights.parameterCount(c)); // Llama 3.2 1B's published count
    }

    @Test
    void badConfigsNameTheFileAndTheProblem(@TempDir Path dir) throws Exception {
        expect(dir.resolve("none"), null, "missing");
        expect(dir.resolve("malformed"), "{\"model_type\": \"llama\",", "not valid JSON");
        expect(dir.resolve("gpt2"), LLAMA32_1B.replace("\"llama\"", "\"gpt2\""), "unsupported model_type 'gpt2'");
        expect(dir.resolve("yarn"), LLAMA32_1B.replace("\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\""),
                "unsupported rope_scaling type 'yarn'");
        expect(dir.resolve("llama3-missing"), LLAMA32_1B.replace("\"low_freq_factor\": 1.0,", ""),
                "missing rope_scaling.low_freq_factor");
        expect(dir.resolve("heads"), LLAMA32_1B.replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5"),
                "not a multiple");
        expect(dir.resolve("type"), LLAMA32_1B.replace("\"hidden_size\": 2048", "\"hidden_size\": \"big\""),
                "hidden_size: expected a positive integer");
        expect(dir.resolve("act"), LLAMA32_1B.replace("\"silu\"", "\"gelu\""), "unsupported hidden_act");
    }

    private static void expect(Path dir, String json, String fragment) throws Exception {
        if (json != null) {
            write(dir, json);
        }
        InputException e = assertThrows(InputException.class, () -> LlamaConfig.read(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("config.json").toString()), e.getMessage());
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }
}
