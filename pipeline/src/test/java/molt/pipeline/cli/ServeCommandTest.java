package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code molt serve}'s arguments: an address it cannot listen on is the user's input (exit 2, one line). */
class ServeCommandTest {
    @TempDir
    Path dir;

    private Path model() throws Exception {
        Path m = TinyCheckpoints.builder().layers(1).vocab(ByteTokenizer.VOCAB).maxPositions(32).write(dir.resolve("m"));
        new ByteTokenizer().save(m);
        return m;
    }

    @Test
    void refusesAPortOutOfRangeBeforeLoadingTheModel() {
        CliTestSupport.Run r = CliTestSupport.run("serve", "--model", dir.resolve("absent").toString(), "--port",
                "99999");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--port: expected 0 (any free port) to 65535, found 99999"), r.err());
        assertFalse(r.err().contains("internal error") || r.err().contains("\tat "), r.err());
        CliTestSupport.Run body = CliTestSupport.run("serve", "--model", dir.resolve("absent").toString(),
                "--max-body", "0");
        assertEquals(2, body.exit(), body.err());
        assertTrue(body.err().contains("--max-body: expected at least 1 byte, found 0"), body.err());
    }

    @Test
    void aPortInUseIsAnInputError() throws Exception {
        Path m = model();
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            int port = taken.getLocalPort();
            CliTestSupport.Run r = assertTimeoutPreemptively(Duration.ofSeconds(60), () -> CliTestSupport.run("serve",
                    "--model", m.toString(), "--host", "127.0.0.1", "--port", String.valueOf(port)));
            assertEquals(2, r.exit(), r.err());
            assertTrue(r.err().contains("--host/--port: cannot listen on 127.0.0.1:" + port + " ("), r.err());
            assertFalse(r.err().contains("internal error") || r.err().contains("\tat "), r.err());
        }
    }
}
