package molt.pipeline.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import molt.pipeline.cli.CliTestSupport;
import molt.pipeline.run.PipelineTestSupport;
import molt.teacher.io.SafetensorsFile;
import molt.teacher.io.SafetensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pins what teacher pretraining computes: the SHA-256 of the weights a 20-step run trains (one thread). A cached
 * teacher is found by a key that hashes its settings and {@link TeacherPretrainStage#FORMAT}, not the code, so a
 * change to the numerics must bump FORMAT (otherwise old cached teachers would be reused as if the new code had
 * made them); this test fails until the pin is updated, which is the moment to bump it.
 */
class TeacherPretrainPinTest {
    /** The data digest of the pinned run's teacher, and the FORMAT it was computed under. */
    private static final String PINNED = "27f676e8a529ab6fc0406a2fa2b992e42bdf534111c28bead60f23dd87440503";
    private static final int PINNED_FORMAT = 1;

    @Test
    void twentyStepsOfPretrainingGiveThePinnedWeights(@TempDir Path dir) throws Exception {
        Path config = PipelineTestSupport.pretrainConfig(dir, "run", "seed: 7\nthreads: 1",
                "    val_every: 10\n    val_batches: 1", "");
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString());
        assertEquals(0, r.exit(), r.err());
        Path teacher = Path.of(new ObjectMapper().readTree(dir.resolve("run/report.json").toFile()).get("teacher").asText());
        try (SafetensorsFile f = SafetensorsFile.open(teacher.resolve("model.safetensors"))) {
            assertEquals(PINNED_FORMAT, TeacherPretrainStage.FORMAT, "FORMAT was bumped: update PINNED and PINNED_FORMAT");
            assertEquals(PINNED, f.metadata().get(SafetensorsWriter.DATA_SHA256),
                    "teacher pretraining computes different weights: bump TeacherPretrainStage.FORMAT, then update "
                            + "PINNED and PINNED_FORMAT here");
        }
    }
}
