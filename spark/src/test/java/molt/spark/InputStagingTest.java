package molt.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.run.Runner;
import molt.pipeline.run.StopSignal;
import molt.teacher.InputException;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Inputs on a Hadoop filesystem other than the local one (here {@link SchemeTestFileSystem}, standing in for an
 * object store) are copied to each machine's staging directory, reused while the source is unchanged, and a run that
 * names its teacher and data by URI writes the same bytes as one that names them by path.
 */
class InputStagingTest {
    @TempDir
    Path tmp;

    private static Configuration hadoop() {
        Configuration c = new Configuration();
        c.set("fs." + SchemeTestFileSystem.SCHEME + ".impl", SchemeTestFileSystem.class.getName());
        return c;
    }

    private static URI uri(Path p) {
        return URI.create(SchemeTestFileSystem.SCHEME + "://" + p.toAbsolutePath());
    }

    @Test
    void aDirectoryIsCopiedWholeAndReusedUntilItChanges() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("remote/model"));
        Files.writeString(src.resolve("config.json"), "{\"a\": 1}");
        Files.createDirectories(src.resolve("sub"));
        Files.write(src.resolve("sub/weights.bin"), new byte[] {1, 2, 3, 4, 5});
        Path root = tmp.resolve("inputs");

        Path local = InputStaging.stage(uri(src), hadoop(), root);
        assertEquals("model", local.getFileName().toString());
        assertEquals("{\"a\": 1}", Files.readString(local.resolve("config.json")));
        assertEquals(5, Files.readAllBytes(local.resolve("sub/weights.bin")).length);
        FileTime copied = Files.getLastModifiedTime(local.resolve("config.json"));

        Files.setLastModifiedTime(local.resolve("config.json"), FileTime.fromMillis(0)); // marks this copy
        assertEquals(local, InputStaging.stage(uri(src), hadoop(), root), "the same path on every call");
        assertEquals(FileTime.fromMillis(0), Files.getLastModifiedTime(local.resolve("config.json")), "reused");

        Files.writeString(src.resolve("config.json"), "{\"a\": 22}");
        assertEquals(local, InputStaging.stage(uri(src), hadoop(), root));
        assertEquals("{\"a\": 22}", Files.readString(local.resolve("config.json")), "a changed source is copied again");
        assertTrue(copied.toMillis() > 0);
        try (Stream<Path> left = Files.list(root)) {
            assertEquals(1, left.count(), "no temporary directories left behind");
        }
    }

    @Test
    void aMissingInputIsNamed() {
        URI missing = uri(tmp.resolve("nowhere"));
        InputException e = assertThrows(InputException.class,
                () -> InputStaging.stage(missing, hadoop(), tmp.resolve("inputs")));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    }

    @Test
    void aRunWithItsTeacherAndDataOnAnotherFilesystemWritesTheSameBytes() throws Exception {
        Path plainDir = Files.createDirectories(tmp.resolve("plain"));
        Path plain = SparkTestRuns.config(plainDir);
        Runner.run(Runner.resolve(ConfigLoader.load(plain, List.of())), StopSignal.manual());

        Path remoteDir = Files.createDirectories(tmp.resolve("remote"));
        Path remote = SparkTestRuns.config(remoteDir, SchemeTestFileSystem.SCHEME + "://");
        Map<String, String> props = Map.of("spark.master", "local[2,4]", "spark.ui.enabled", "false",
                "spark.hadoop.fs." + SchemeTestFileSystem.SCHEME + ".impl", SchemeTestFileSystem.class.getName(),
                InputStaging.DIR_SETTING, tmp.resolve("inputs").toString());
        props.forEach(System::setProperty);
        try {
            assertEquals(0, MoltSpark.execute("run", remote.toString()));
        } finally {
            props.keySet().forEach(System::clearProperty);
        }
        SparkTestRuns.assertSameBytes(SparkTestRuns.outputs(plainDir.resolve("run")),
                SparkTestRuns.outputs(remoteDir.resolve("run")));
        String resolved = Files.readString(remoteDir.resolve("run/config.resolved.json"));
        assertTrue(resolved.contains(tmp.resolve("inputs").toString()), "the run read the staged copies: " + resolved);
    }
}
