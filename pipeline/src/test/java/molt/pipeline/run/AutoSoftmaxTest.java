package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import molt.pipeline.cli.CliTestSupport;
import molt.teacher.io.SafetensorsFile;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * softmax_layers: auto on a 4-layer teacher whose layer 2 is planted to be hard to linearize (its q and k scaled
 * up 10x: attention so sharp that a linear term cannot follow it beyond the window), the others diffuse.
 */
class AutoSoftmaxTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static Path teacher(Path dir) throws Exception {
        Path t = TinyCheckpoints.builder().layers(4).hidden(32).heads(4, 2).vocab(ByteTokenizer.VOCAB)
                .scaleTensor("model.layers.2.self_attn.q_proj.weight", 10)
                .scaleTensor("model.layers.2.self_attn.k_proj.weight", 10)
                .write(dir.resolve("teacher"));
        new ByteTokenizer().save(t);
        return t;
    }

    private static Path config(Path dir, Path teacher, String variants) throws Exception {
        String yaml = """
                name: auto
                output_dir: %s
                seed: 2
                """.formatted(dir.resolve("run"))
                + PipelineTestSupport.sources(teacher, PipelineTestSupport.corpus(dir)) + """
                student:
                  mixer: hedgehog_window
                  feature_dim: 4
                  window: 4
                  chunk_size: 16
                  softmax_layers: auto
                  softmax_budget: 1
                """ + PipelineTestSupport.LORA + """
                stages:
                  - name: transfer
                    type: attention_transfer
                    tokens: 640
                    val_every: 10
                    val_batches: 2
                  - name: finetune
                    type: lora_finetune
                    tokens: 64
                    val_batches: 1
                  - name: export
                    type: export
                %s
                """.formatted(variants);
        Path f = dir.resolve("auto.yaml");
        Files.writeString(f, yaml);
        return f;
    }

    @Test
    void thePlantedLayerKeepsSoftmaxAndTheChoiceIsStoredAndReused(@TempDir Path dir) throws Exception {
        Path cfg = config(dir, teacher(dir), "");
        CliTestSupport.Run r = CliTestSupport.run("run", cfg.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("softmax kept in layers [2]"), r.out());
        Path run = dir.resolve("run");

        // The choice and every layer's score, in run.json and report.json.
        JsonNode plan = JSON.readTree(run.resolve("run.json").toFile()).path("plans").path("student");
        assertEquals("[2]", plan.path("softmax_layers").toString(), plan.toString());
        assertEquals(4, plan.path("scores").size());
        double hard = plan.path("scores").get(2).path("relative_mse").asDouble();
        for (int i : new int[] {0, 1, 3}) {
            assertTrue(plan.path("scores").get(i).path("relative_mse").asDouble() < hard, plan.toString());
        }
        assertEquals(plan, JSON.readTree(run.resolve("report.json").toFile()).path("plans").path("student"));

        // The export's plan keeps softmax in layer 2, and the stages after the choice train no mixer there.
        JsonNode exported = JSON.readTree(run.resolve("stages/export/student/config.json").toFile());
        assertEquals("[\"hedgehog_window\",\"hedgehog_window\",\"softmax\",\"hedgehog_window\"]",
                exported.path("plan").toString(), exported.toString());
        try (SafetensorsFile f = SafetensorsFile.open(run.resolve("stages/finetune/final.safetensors"))) {
            assertTrue(f.names().stream().anyMatch(n -> n.startsWith("model.layers.3.self_attn.mixer.")));
            assertFalse(f.names().stream().anyMatch(n -> n.startsWith("model.layers.2.self_attn.mixer.")),
                    f.names().toString());
        }

        // Made once: with the stages after it to run again and the transfer's scores changed to favour layer 0,
        // the stored choice is what they use.
        ObjectNode state = (ObjectNode) JSON.readTree(run.resolve("run.json").toFile());
        for (String s : new String[] {"finetune", "export"}) {
            ((ObjectNode) state.path("stages").path(s)).put("status", "pending");
        }
        Files.writeString(run.resolve("run.json"), state.toPrettyString());
        ObjectNode result = (ObjectNode) JSON.readTree(run.resolve("stages/transfer/result.json").toFile());
        ((ObjectNode) ((ArrayNode) result.get("per_layer_mse")).get(0)).put("relative_mse", 1e9);
        Files.writeString(run.resolve("stages/transfer/result.json"), result.toPrettyString());
        CliTestSupport.Run again = CliTestSupport.run("run", cfg.toString());
        assertEquals(0, again.exit(), again.err());
        assertTrue(Files.readString(run.resolve("molt.log")).contains("stored in run.json"));
        assertEquals("[\"hedgehog_window\",\"hedgehog_window\",\"softmax\",\"hedgehog_window\"]",
                JSON.readTree(run.resolve("stages/export/student/config.json").toFile()).path("plan").toString());
    }

    @Test
    void aChainWithoutAttentionTransferIsRefusedBeforeAnythingRuns(@TempDir Path dir) throws Exception {
        Path cfg = config(dir, teacher(dir), """
                variants:
                  no_transfer: {skip: [transfer]}
                """);
        CliTestSupport.Run r = CliTestSupport.run("validate", cfg.toString());
        assertEquals(2, r.exit(), r.out());
        assertTrue(r.err().contains("variant 'no_transfer' has no attention_transfer stage"), r.err());
        assertFalse(Files.exists(dir.resolve("run/run.json")));
    }

    @Test
    void aBudgetThatLinearizesNothingIsRefused(@TempDir Path dir) throws Exception {
        Path cfg = config(dir, teacher(dir), "");
        Files.writeString(cfg, Files.readString(cfg).replace("softmax_budget: 1", "softmax_budget: 4"));
        CliTestSupport.Run r = CliTestSupport.run("validate", cfg.toString());
        assertEquals(2, r.exit(), r.out());
        assertTrue(r.err().contains("nothing would be linearized"), r.err());
        Files.writeString(cfg, Files.readString(cfg).replace("softmax_budget: 4", "softmax_budget: 1.5"));
        r = CliTestSupport.run("validate", cfg.toString());
        assertEquals(2, r.exit(), r.out());
        assertTrue(r.err().contains("softmax_budget"), r.err());
        Files.writeString(cfg, Files.readString(cfg).replace("softmax_budget: 1.5", "softmax_budget: 0.5"));
        r = CliTestSupport.run("validate", cfg.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("the 2 layer(s) with the largest relative error keep softmax"), r.out());
    }
}
