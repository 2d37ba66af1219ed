package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import molt.pipeline.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Kill and stop tests: each run is a separate JVM, as a scheduler would start it. */
class ResumeTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String LONGER = "";

    private static Process start(Path config, Path log) throws Exception {
        return new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(), "run", config.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    private static Path config(Path dir, Path teacher, Path corpus) throws Exception {
        Path c = PipelineTestSupport.config(dir, teacher, corpus, LONGER);
        String yaml = Files.readString(c).replace("tokens: 256\n    val_every: 3", "tokens: 3200\n    val_every: 3");
        Files.writeString(c, yaml);
        return c;
    }

    private static long latestStep(Path run) {
        Path index = run.resolve("stages/transfer/checkpoints/checkpoints.json");
        try {
            if (!Files.isRegularFile(index)) {
                return -1;
            }
            var kept = JSON.readTree(index.toFile()).path("kept");
            return kept.size() == 0 ? -1 : kept.get(kept.size() - 1).path("step").asLong();
        } catch (Exception e) {
            return -1;
        }
    }

    @Test
    void aRunKilledMidStageResumesToTheSameBytes(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path corpus = PipelineTestSupport.corpus(dir);
        Path a = Files.createDirectories(dir.resolve("a"));
        Path b = Files.createDirectories(dir.resolve("b"));
        Path cfgA = config(a, teacher, corpus);
        Path cfgB = config(b, teacher, corpus);

        Process straight = start(cfgA, a.resolve("out.log"));
        assertTrue(straight.waitFor(300, TimeUnit.SECONDS));
        assertEquals(0, straight.exitValue(), Files.readString(a.resolve("out.log")));

        Process killed = start(cfgB, b.resolve("out1.log"));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (latestStep(b.resolve("run")) < 4 && System.nanoTime() < deadline && killed.isAlive()) {
            Thread.sleep(5);
        }
        killed.destroyForcibly(); // SIGKILL
        assertTrue(killed.waitFor(30, TimeUnit.SECONDS));
        String state = Files.readString(b.resolve("run/run.json"));
        assertTrue(state.contains("\"running\""), "killed while a stage was running: " + state);
        long killedAt = latestStep(b.resolve("run"));
        assertTrue(killedAt >= 4 && killedAt < 100, "killed between checkpoints: " + killedAt);

        Process resumed = start(cfgB, b.resolve("out2.log"));
        assertTrue(resumed.waitFor(300, TimeUnit.SECONDS));
        assertEquals(0, resumed.exitValue(), Files.readString(b.resolve("out2.log")));
        assertTrue(Files.readString(b.resolve("run/molt.log")).contains("resuming at step"));

        for (String f : List.of("stages/transfer/final.safetensors", "stages/finetune/final.safetensors",
                "stages/export/student/model.safetensors")) {
            assertArrayEquals(Files.readAllBytes(a.resolve("run").resolve(f)), Files.readAllBytes(b.resolve("run").resolve(f)),
                    f + " differs between the uninterrupted and the killed-and-resumed run");
        }
        // The metrics file reads as one run: one line per step.
        assertEquals(Files.readAllLines(a.resolve("run/metrics.jsonl")).size(),
                Files.readAllLines(b.resolve("run/metrics.jsonl")).size());
    }

    @Test
    void sigtermWritesACheckpointAndExitsCleanly(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path cfg = config(dir, teacher, PipelineTestSupport.corpus(dir));
        Process p = start(cfg, dir.resolve("out.log"));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (latestStep(dir.resolve("run")) < 2 && System.nanoTime() < deadline && p.isAlive()) {
            Thread.sleep(5);
        }
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String out = Files.readString(dir.resolve("out.log"));
        assertEquals(143, p.exitValue(), out); // the conventional status of a process ended by SIGTERM
        assertTrue(out.contains("stopped at step"), out);
        long stoppedAt = latestStep(dir.resolve("run"));
        assertNotEquals(-1, stoppedAt);
        assertTrue(Files.readString(dir.resolve("run/run.json")).contains("\"stopped\""));
        assertTrue(new File(dir.resolve("run").toFile(), "metrics.jsonl").exists());
    }
}
