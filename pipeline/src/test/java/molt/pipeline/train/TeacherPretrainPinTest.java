package molt.pipeline.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import molt.pipeline.cli.CliTestSupport;
import molt.pipeline.run.PipelineTestSupport;
import molt.teacher.io.SafetensorsFile;
import molt.teacher.io.SafetensorsWriter;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pins what teacher pretraining computes: the SHA-256 of the weights a 20-step run trains (one thread). A cached
 * teacher is found by a key that hashes its settings and {@link TeacherPretrainStage#FORMAT}, not the code, so a
 * change to the numerics must bump FORMAT (otherwise old cached teachers would be reused as if the new code had
 * made them); this test fails until the pin is updated, which is the moment to bump it.
 *
 * <p>libtorch's kernels (MKL's GEMM above all) round differently on different kinds of CPU, so the digest is pinned
 * per kind: the CPU's vendor and its widest vector extension. On a kind without a pin the test is skipped, printing
 * the digest to pin.
 */
class TeacherPretrainPinTest {
    /** The data digest of the pinned run's teacher per kind of CPU, and the FORMAT they were computed under. */
    private static final Map<String, String> PINNED = Map.of(
            "AuthenticAMD/avx512", "27f676e8a529ab6fc0406a2fa2b992e42bdf534111c28bead60f23dd87440503",
            "GenuineIntel/avx512", "341e13816b9786cf5c922d833260154c5b5280c2632e64124a7e2134dae797dd");
    private static final int PINNED_FORMAT = 1;

    @Test
    void twentyStepsOfPretrainingGiveThePinnedWeights(@TempDir Path dir) throws Exception {
        String kind = cpuKind();
        Assumptions.assumeTrue(kind != null, "no /proc/cpuinfo: the kind of CPU is unknown");
        Path config = PipelineTestSupport.pretrainConfig(dir, "run", "seed: 7\nthreads: 1",
                "    val_every: 10\n    val_batches: 1", "");
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString());
        assertEquals(0, r.exit(), r.err());
        Path teacher = Path.of(new ObjectMapper().readTree(dir.resolve("run/report.json").toFile()).get("teacher").asText());
        try (SafetensorsFile f = SafetensorsFile.open(teacher.resolve("model.safetensors"))) {
            assertEquals(PINNED_FORMAT, TeacherPretrainStage.FORMAT, "FORMAT was bumped: update PINNED and PINNED_FORMAT");
            String digest = f.metadata().get(SafetensorsWriter.DATA_SHA256);
            Assumptions.assumeTrue(PINNED.containsKey(kind),
                    "no pin for CPU kind " + kind + " (its digest is " + digest + ")");
            assertEquals(PINNED.get(kind), digest,
                    "teacher pretraining computes different weights on " + kind + ": bump TeacherPretrainStage.FORMAT, "
                            + "then update PINNED (every kind) and PINNED_FORMAT here");
        }
    }

    @Test
    void pretrainingLongEnoughToFuseItsAttentionHasACacheKeyOfItsOwn() {
        Path file = Path.of("..", "configs", "quickstart.yaml");
        molt.pipeline.config.RunConfig quickstart = molt.pipeline.config.ConfigLoader.load(file, java.util.List.of());
        assertEquals(false, TeacherPretrainStage.trainsThroughFusedAttention(quickstart), "320 tokens: explicit ops");
        molt.pipeline.config.RunConfig longer = molt.pipeline.config.ConfigLoader.load(file,
                java.util.List.of("data.seq_len=" + molt.teacher.nd.FusedAttention.TRAINING_FROM));
        assertEquals(true, TeacherPretrainStage.trainsThroughFusedAttention(longer));
        molt.pipeline.config.RunConfig longCurriculum = molt.pipeline.config.ConfigLoader.load(file,
                java.util.List.of("stages[0].repeat_seq_len=2048"));
        assertEquals(true, TeacherPretrainStage.trainsThroughFusedAttention(longCurriculum));
    }

    /** "vendor/isa": /proc/cpuinfo's vendor_id and the widest of avx512, avx2 and sse in its flags; null if unread. */
    static String cpuKind() throws IOException {
        Path info = Path.of("/proc/cpuinfo");
        if (!Files.isReadable(info)) {
            return null;
        }
        String vendor = "unknown";
        Set<String> flags = Set.of();
        for (String line : Files.readAllLines(info)) {
            String[] kv = line.split(":", 2);
            if (kv.length < 2) {
                continue;
            }
            String key = kv[0].trim();
            if (key.equals("vendor_id")) {
                vendor = kv[1].trim();
            } else if (key.equals("flags")) {
                flags = new HashSet<>(Arrays.asList(kv[1].trim().split("\\s+")));
                break;
            }
        }
        String isa = flags.contains("avx512f") ? "avx512" : flags.contains("avx2") ? "avx2" : "sse";
        return vendor + "/" + isa;
    }
}
