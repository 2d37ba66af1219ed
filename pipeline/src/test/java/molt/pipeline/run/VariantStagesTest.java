package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import molt.pipeline.cli.CliTestSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A variant's own stage settings reach the stages it runs, and only its own. */
class VariantStagesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aVariantTrainsWithItsOwnLearningRateAndTokens(@TempDir Path dir) throws Exception {
        Path cfg = PipelineTestSupport.config(dir, PipelineTestSupport.teacher(dir), PipelineTestSupport.corpus(dir), """
                variants:
                  same:
                    description: the run's settings
                  own:
                    description: its own LoRA budget and rate, and mixers trained
                    stages:
                      finetune: {tokens: 128, lr: 0.00005, train_mixers: true, mixer_lr: 0.003}
                """);
        CliTestSupport.Run r = CliTestSupport.run("run", cfg.toString());
        assertEquals(0, r.exit(), r.err());
        Path run = dir.resolve("run");
        JsonNode main = JSON.readTree(run.resolve("stages/finetune/result.json").toFile());
        JsonNode same = JSON.readTree(run.resolve("stages/same/finetune/result.json").toFile());
        JsonNode own = JSON.readTree(run.resolve("stages/own/finetune/result.json").toFile());
        assertEquals(main.path("tokens"), same.path("tokens"));
        assertTrue(own.path("tokens").asLong() < main.path("tokens").asLong(), own + " vs " + main);
        assertTrue(own.path("trainable_parameters").asLong() > main.path("trainable_parameters").asLong(),
                "train_mixers adds the mixers' parameters: " + own + " vs " + main);
        // The learning rates each chain's optimizer steps used (LoRA's schedule peaks at its lr).
        double mainPeak = 0;
        double ownPeak = 0;
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode m = JSON.readTree(line);
            if (m.path("stage").asText().equals("finetune") && m.has("lr")) {
                mainPeak = Math.max(mainPeak, m.path("lr").asDouble());
            }
            if (m.path("stage").asText().equals("own/finetune") && m.has("lr")) {
                ownPeak = Math.max(ownPeak, m.path("lr").asDouble());
            }
        }
        assertTrue(ownPeak > 0 && ownPeak <= 0.00005 + 1e-12, "own peak lr " + ownPeak);
        assertTrue(mainPeak > 0.00005, "the run's lr is its own: " + mainPeak);
        // The resolved config records the override, and validate names it.
        JsonNode resolved = JSON.readTree(run.resolve("config.resolved.json").toFile()).path("config");
        assertEquals(0.00005, resolved.path("variants").path("own").path("stages").path("finetune").path("lr")
                .asDouble());
        CliTestSupport.Run v = CliTestSupport.run("validate", cfg.toString());
        assertEquals(0, v.exit(), v.err());
        assertTrue(v.out().contains("# variant own: ") && v.out().contains("its own settings for finetune"), v.out());
        List<String> sameLine = v.out().lines().filter(l -> l.startsWith("# variant same:")).toList();
        assertTrue(!sameLine.isEmpty() && !sameLine.get(0).contains("its own settings"), v.out());
    }
}
