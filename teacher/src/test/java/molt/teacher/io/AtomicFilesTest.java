package molt.teacher.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import molt.teacher.InputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {

    @Test
    void aFailedWriteKeepsTheOldFileAndLeavesNoTemporary(@TempDir Path dir) throws Exception {
        Path target = Files.writeString(dir.resolve("state.json"), "old");
        for (String reason : new String[] {"No space left on device", "Input/output error"}) {
            InputException e = assertThrows(InputException.class, () -> AtomicFiles.write(target, ch -> {
                ch.write(ByteBuffer.wrap("partial".getBytes()));
                throw new IOException(reason);
            }));
            assertTrue(e.getMessage().contains("state.json: cannot write: " + reason), e.getMessage());
            assertEquals("old", Files.readString(target));
            try (var s = Files.list(dir)) {
                assertEquals(1, s.count(), "only the target remains");
            }
        }
    }

    @Test
    void aDirectoryIsNeverReplaced(@TempDir Path dir) throws Exception {
        Path target = Files.createDirectories(dir.resolve("out"));
        Files.writeString(target.resolve("user.txt"), "mine");
        InputException e = assertThrows(InputException.class, () -> AtomicFiles.writeString(target, "x"));
        assertTrue(e.getMessage().contains("is a directory"), e.getMessage());
        assertEquals("mine", Files.readString(target.resolve("user.txt")));
    }
}
