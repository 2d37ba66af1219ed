package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import molt.pipeline.cli.CliTestSupport;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.train.TeacherPretrainStage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run directory whose teacher was pretrained and cached before the cache key hashed the pretraining format and
 * the engine (it sits under the settings-only key) resumes with that teacher; a new run does not reuse it.
 */
class LegacyRunTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aRunPretrainedUnderTheOldKeyResumesWithItsTeacher(@TempDir Path dir) throws Exception {
        String stages = String.join("\n", "  - name: transfer", "    type: attention_transfer", "    tokens: 128",
                "    val_batches: 2", "  - name: export", "    type: export");
        Path config = PipelineTestSupport.pretrainConfig(dir, "run", "student: {feature_dim: 4, window: 8, chunk_size: 16}",
                "    val_every: 5\n    val_batches: 2", stages);
        assertEquals(0, CliTestSupport.run("run", config.toString()).exit());
        RunConfig cfg = Runner.resolve(ConfigLoader.load(config, List.of())); // threads chosen as the run chose them
        // As an older molt left it: the teacher under the settings-only key, the export not done yet.
        Path legacy = TeacherPretrainStage.legacyCacheDir(cfg);
        Files.move(TeacherPretrainStage.cacheDir(cfg), legacy);
        Path runJson = dir.resolve("run/run.json");
        ObjectNode state = (ObjectNode) JSON.readTree(runJson.toFile());
        ((ObjectNode) state.withObject("/stages").get("export")).put("status", "pending");
        Files.writeString(runJson, state.toString());
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(Files.readString(dir.resolve("run/molt.log")).contains("resuming with the teacher this run pretrained"));
        assertEquals(legacy.toAbsolutePath().normalize().toString(),
                JSON.readTree(dir.resolve("run/report.json").toFile()).get("teacher").asText());
        // A new run with the same settings trains its own teacher under the current key.
        Path fresh = Files.writeString(dir.resolve("fresh.yaml"), Files.readString(config)
                .replace("output_dir: " + dir.resolve("run"), "output_dir: " + dir.resolve("fresh")));
        assertEquals(0, CliTestSupport.run("run", fresh.toString()).exit());
        assertTrue(Files.isDirectory(TeacherPretrainStage.cacheDir(cfg)));
    }
}
