package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import molt.teacher.InputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RunFilesTest {

    /** Holds the lock of the directory given as argument until killed (run in a child JVM). */
    public static final class HoldLock {
        public static void main(String[] args) throws Exception {
            RunLock lock = RunLock.acquire(Path.of(args[0]));
            System.out.println("locked");
            System.out.flush();
            Thread.sleep(60_000);
            lock.close();
        }
    }

    @Test
    void lockKeepsOtherProcessesOutAndDiesWithItsHolder(@TempDir Path dir) throws Exception {
        Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), HoldLock.class.getName(), dir.toString())
                .redirectErrorStream(true).start();
        try {
            String line = new java.io.BufferedReader(new java.io.InputStreamReader(child.getInputStream())).readLine();
            assertEquals("locked", line);
            InputException e = assertThrows(InputException.class, () -> RunLock.acquire(dir));
            assertTrue(e.getMessage().contains("in use by another molt process"), e.getMessage());
        } finally {
            child.destroyForcibly(); // SIGKILL
            assertTrue(child.waitFor(20, TimeUnit.SECONDS));
        }
        try (RunLock lock = RunLock.acquire(dir)) {
            assertTrue(Files.exists(dir.resolve(".lock")));
        }
    }

    @Test
    void checkpointsKeepTheLastKAndTheBest(@TempDir Path dir) throws IOException {
        CheckpointStore store = new CheckpointStore(dir, 2);
        double[] metrics = {5.0, 1.0, 3.0, 4.0, 2.5};
        for (int i = 0; i < metrics.length; i++) {
            Path tmp = store.begin(i * 10);
            Files.writeString(tmp.resolve("state.bin"), "step " + i);
            store.commit(tmp, i * 10, metrics[i]);
        }
        List<Long> steps = store.entries().stream().map(CheckpointStore.Entry::step).toList();
        assertEquals(List.of(10L, 30L, 40L), steps);
        assertEquals(10L, store.best().orElseThrow().step());
        assertEquals(40L, store.latest().orElseThrow().step());
        assertEquals("step 4", Files.readString(store.latest().orElseThrow().path().resolve("state.bin")));
        assertFalse(Files.exists(dir.resolve("step-000000000")));
        assertFalse(Files.exists(dir.resolve("step-000000020")));
    }

    @Test
    void anUnfinishedCheckpointIsInvisible(@TempDir Path dir) throws IOException {
        CheckpointStore store = new CheckpointStore(dir, 3);
        Path tmp = store.begin(1);
        store.commit(tmp, 1, Double.NaN);
        Path half = store.begin(2);
        Files.writeString(half.resolve("state.bin"), "half written");
        // A kill here: no commit. The store still reports step 1 only.
        CheckpointStore reopened = new CheckpointStore(dir, 3);
        assertEquals(1L, reopened.latest().orElseThrow().step());
        assertTrue(reopened.best().isEmpty());
    }

    @Test
    void metricsAreTruncatedToTheResumedStep(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("metrics.jsonl");
        try (MetricsLog log = new MetricsLog(file)) {
            for (int s = 1; s <= 5; s++) {
                log.write(MetricsLog.record().put("stage", "a").put("step", s).put("loss", 1.0 / s));
            }
            log.write(MetricsLog.record().put("stage", "b").put("step", 9));
        }
        Files.writeString(file, "{\"stage\":\"a\",\"st", java.nio.file.StandardOpenOption.APPEND);
        MetricsLog.truncateAfter(file, "a", 3);
        List<String> lines = Files.readAllLines(file);
        assertEquals(4, lines.size());
        assertEquals(9, MetricsLog.last(file).get("step").asInt());
    }
}
