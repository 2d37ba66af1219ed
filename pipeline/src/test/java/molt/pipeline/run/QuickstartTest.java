package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import molt.pipeline.cli.CliTestSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quickstart as README gives it (configs/quickstart.yaml, every stage and variant), with sizes reduced through
 * --set so that it runs in seconds: teacher pretraining, the student, the teacher-LoRA control and both ablations,
 * export and the side-by-side evaluation, whose report must have every row.
 */
class QuickstartTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> ROWS = List.of("teacher", "student", "teacher_lora", "no_transfer", "no_window");

    @Test
    void aReducedQuickstartReportsEveryRow(@TempDir Path dir) throws Exception {
        Path config = Path.of("..", "configs", "quickstart.yaml").toAbsolutePath().normalize();
        assertTrue(Files.isRegularFile(config), config.toString());
        Path corpus = PipelineTestSupport.corpus(dir);
        List<String> args = new ArrayList<>(List.of("run", config.toString()));
        for (String set : new String[] {"output_dir=" + dir.resolve("run"), "teacher.cache_dir=" + dir.resolve("cache"),
            "data.source=" + corpus, "data.seq_len=48", "data.val_fraction=0.1", "student.feature_dim=4",
            "student.window=8", "student.chunk_size=16", "stages[0].hidden=32", "stages[0].layers=2",
            "stages[0].intermediate=64", "stages[0].tokens=960", "stages[0].warmup_steps=2", "stages[0].val_every=10",
            "stages[0].repeat_warmup_steps=4", "stages[0].repeat_seq_len=16", "stages[0].repeat_sequences=2",
            "stages[0].repeat_max_period=8", "stages[1].tokens=192",
            "stages[2].tokens=192", "stages[2].grad_accum=1", "stages[4].sequences=2", "stages[4].probes=2",
            "stages[4].distances=[16,32]", "stages[4].contexts=[16,48]"}) {
            args.add("--set");
            args.add(set);
        }
        CliTestSupport.Run r = CliTestSupport.run(args.toArray(String[]::new));
        assertEquals(0, r.exit(), r.err());
        for (String row : ROWS) {
            assertTrue(r.out().lines().anyMatch(l -> l.startsWith(row + " ")), "table row " + row + ":\n" + r.out());
        }

        JsonNode report = JSON.readTree(dir.resolve("run/report.json").toFile());
        Path teacher = Path.of(report.path("teacher").asText());
        Path student = Path.of(report.path("student").asText());
        assertTrue(Files.isRegularFile(teacher.resolve("config.json")), teacher.toString());
        assertTrue(Files.isRegularFile(student.resolve("config.json")), student.toString());
        for (String v : List.of("teacher_lora", "no_transfer", "no_window")) {
            assertTrue(Files.isDirectory(Path.of(report.path("variants").path(v).path("student").asText())), v);
        }
        JsonNode eval = report.path("stages").path("evaluate").path("result");
        for (String row : ROWS) {
            JsonNode n = eval.path(row);
            assertTrue(n.path("perplexity").asDouble() > 1, row + ": " + n);
            assertEquals(2, n.path("recall").size(), row);
            assertEquals(2, n.path("decode").size(), row);
            assertTrue(n.path("trained_fraction").asDouble() > 0, row + ": " + n);
            assertTrue(n.path("tokens").asLong() > 0, row + ": " + n);
            assertTrue(n.path("stage_seconds").size() > 0, row + ": " + n);
        }
        // Same budgets, only the ablated part different.
        assertEquals(1.0, eval.path("teacher").path("trained_fraction").asDouble());
        assertEquals(eval.path("student").path("tokens").asLong(),
                eval.path("no_window").path("tokens").asLong());
        assertEquals(eval.path("student").path("stage_seconds").size(), 2);
        assertEquals(eval.path("no_transfer").path("stage_seconds").size(), 1);
        assertFalse(eval.path("no_transfer").path("stage_seconds").has("attention_transfer"));
        assertTrue(eval.path("teacher_lora").path("trained_fraction").asDouble()
                < eval.path("student").path("trained_fraction").asDouble());
        assertTrue(Files.isDirectory(dir.resolve("run/stages/no_transfer/lora_finetune/checkpoints")));
        assertTrue(Files.readString(dir.resolve("run/metrics.jsonl")).contains("\"stage\":\"no_window/attention_transfer\""));
    }
}
