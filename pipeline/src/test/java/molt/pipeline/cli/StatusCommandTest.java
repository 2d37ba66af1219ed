package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import molt.pipeline.run.RunLock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code molt status} on live, dead and half-made run directories, and on things that are not run directories. */
class StatusCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static void runJson(Path dir, String status) throws Exception {
        Files.writeString(dir.resolve("config.resolved.json"), "{}");
        Files.writeString(dir.resolve("run.json"), "{\"stages\":{\"attention_transfer\":{\"type\":\"attention_transfer\","
                + "\"status\":\"" + status + "\"},\"export\":{\"type\":\"export\",\"status\":\"pending\"}}}");
    }

    @Test
    void aStageLeftRunningByADeadProcessIsInterrupted(@TempDir Path dir) throws Exception {
        runJson(dir, "running");
        Files.writeString(dir.resolve(".lock"), "");
        CliTestSupport.Run r = CliTestSupport.run("status", dir.toString());
        assertEquals(0, r.exit(), r.err());
        JsonNode n = JSON.readTree(r.out());
        assertEquals("not running", n.path("process").asText());
        assertEquals("interrupted", n.path("stages").path("attention_transfer").path("status").asText());
        assertEquals("pending", n.path("stages").path("export").path("status").asText());
    }

    @Test
    void aLiveRunReadsRunning(@TempDir Path dir) throws Exception {
        runJson(dir, "running");
        try (RunLock lock = RunLock.acquire(dir)) {
            JsonNode n = JSON.readTree(CliTestSupport.run("status", dir.toString()).out());
            assertEquals("running", n.path("process").asText());
            assertEquals("running", n.path("stages").path("attention_transfer").path("status").asText());
        }
    }

    @Test
    void aRunStoppedWhilePreparingDataIsARunDirectory(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("config.resolved.json"), "{}");
        CliTestSupport.Run r = CliTestSupport.run("status", dir.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(JSON.readTree(r.out()).path("phase").asText().startsWith("interrupted while preparing data"),
                r.out());
    }

    @Test
    void notARunDirectoryOrADamagedOneIsExitTwoWithOneLine(@TempDir Path dir) throws Exception {
        Path empty = Files.createDirectory(dir.resolve("empty"));
        Path file = Files.writeString(dir.resolve("file.txt"), "x");
        Path damaged = Files.createDirectory(dir.resolve("damaged"));
        runJson(damaged, "done");
        Files.writeString(damaged.resolve("run.json"), "{\"stages\": {\"a\": ");
        for (Path p : new Path[] {empty, file, damaged, dir.resolve("missing")}) {
            CliTestSupport.Run r = CliTestSupport.run("status", p.toString());
            assertEquals(2, r.exit(), p + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().contains(p.getFileName().toString()), r.err());
        }
    }
}
