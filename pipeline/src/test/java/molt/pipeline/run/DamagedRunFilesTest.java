package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.function.Consumer;
import molt.pipeline.cli.CliTestSupport;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A resumed run whose files were changed or damaged after molt wrote them stops with one line naming the file
 * (exit 2), instead of resuming from something it did not write or failing with a stack trace.
 */
class DamagedRunFilesTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    static Path tmp;
    static Path done;

    @BeforeAll
    static void finishedRun() throws Exception {
        Path teacher = PipelineTestSupport.teacher(tmp);
        Path corpus = PipelineTestSupport.corpus(tmp);
        Path cfg = PipelineTestSupport.config(tmp, teacher, corpus, "");
        // Enough attention-transfer steps for two kept checkpoints (every 2 steps).
        Files.writeString(cfg, Files.readString(cfg).replace("tokens: 256\n    val_every: 3", "tokens: 3200\n    val_every: 3"));
        assertEquals(0, CliTestSupport.run("run", cfg.toString()).exit());
        assertTrue(checkpoints(tmp.resolve("run")).size() >= 2);
        done = tmp.resolve("run");
    }

    /** A copy of the finished run with attention transfer marked interrupted, so a rerun resumes it. */
    private static Path interrupted(String name) throws Exception {
        Path run = tmp.resolve(name);
        try (var s = Files.walk(done)) {
            for (Path p : s.toList()) {
                Path q = run.resolve(done.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(q);
                } else if (p.toString().endsWith(".json")) {
                    // The copy is its own run directory: its recorded output_dir moves with it.
                    Files.writeString(q, Files.readString(p).replace(done.toString(), run.toString()));
                } else {
                    Files.copy(p, q, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        ObjectNode state = (ObjectNode) JSON.readTree(run.resolve("run.json").toFile());
        state.withObject("/stages").fields().forEachRemaining(e -> ((ObjectNode) e.getValue()).put("status", "pending"));
        ((ObjectNode) state.withObject("/stages").get("transfer")).put("status", "running");
        Files.writeString(run.resolve("run.json"), state.toString());
        Files.deleteIfExists(run.resolve("stages/transfer/final.safetensors"));
        return run;
    }

    private static Path config(Path run) throws Exception {
        Path cfg = tmp.resolve(run.getFileName() + ".yaml");
        Files.writeString(cfg, Files.readString(tmp.resolve("tiny.yaml")).replace(done.toString(), run.toString()));
        return cfg;
    }

    private static List<Path> checkpoints(Path run) throws Exception {
        try (var s = Files.list(run.resolve("stages/transfer/checkpoints"))) {
            return s.filter(Files::isDirectory).sorted().toList();
        }
    }

    private static void refused(String name, Consumer<Path> damage, String expected) throws Exception {
        Path run = interrupted(name);
        damage.accept(run);
        CliTestSupport.Run r = CliTestSupport.run("run", config(run).toString());
        assertEquals(2, r.exit(), name + ": " + r.err());
        List<String> lines = r.err().lines().filter(l -> l.startsWith("molt:")).toList();
        assertEquals(1, lines.size(), r.err());
        assertTrue(lines.get(0).contains(expected), name + ": " + lines.get(0));
    }

    private static void write(Path p, String text) {
        try {
            Files.writeString(p, text);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void anUntouchedCopyResumes() throws Exception {
        Path run = interrupted("clean");
        assertEquals(0, CliTestSupport.run("run", config(run).toString()).exit());
    }

    @Test
    void weightsOverwrittenWithOtherFiniteNumbersAreRefused() throws Exception {
        refused("overwritten", run -> {
            try {
                Path w = checkpoints(run).get(checkpoints(run).size() - 1).resolve("state.safetensors");
                byte[] b = Files.readAllBytes(w);
                long header = ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
                ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putFloat((int) (8 + header), 0.125f);
                Files.write(w, b);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, "state.safetensors: its data does not match the SHA-256 recorded");
    }

    @Test
    void weightsFromAnotherCheckpointAreRefused() throws Exception {
        refused("swapped", run -> {
            try {
                List<Path> c = checkpoints(run);
                Files.copy(c.get(0).resolve("state.safetensors"), c.get(c.size() - 1).resolve("state.safetensors"),
                        StandardCopyOption.REPLACE_EXISTING);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, "does not belong to this checkpoint");
    }

    @Test
    void damagedJsonFilesAreOneLineErrorsNamingThem() throws Exception {
        refused("state", run -> {
            try {
                write(checkpoints(run).get(checkpoints(run).size() - 1).resolve("state.json"), "{\"step\": ");
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, "state.json: is not valid JSON");
        refused("index", run -> write(run.resolve("stages/transfer/checkpoints/checkpoints.json"), "[1, 2"),
                "checkpoints.json: is not valid JSON");
        refused("index-entry", run -> write(run.resolve("stages/transfer/checkpoints/checkpoints.json"),
                "{\"kept\": [{\"metric\": 1}]}"), "checkpoints.json: damaged checkpoint index");
        refused("runjson", run -> write(run.resolve("run.json"), "\"stages\""), "run.json: expected a JSON object");
        refused("resolved", run -> write(run.resolve("config.resolved.json"), "{not json"),
                "config.resolved.json: is not valid JSON");
    }
}
