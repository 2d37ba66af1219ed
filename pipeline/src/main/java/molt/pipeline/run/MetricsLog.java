package molt.pipeline.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Step metrics as JSON Lines ({@code metrics.jsonl}): one object per line, flushed as written, so a killed run
 * keeps every line it logged. On resume, lines past the resumed checkpoint's step are dropped first
 * ({@link #truncateAfter}) so the file reads as one uninterrupted run.
 */
public final class MetricsLog implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final OutputStream out;

    public MetricsLog(Path file) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        this.out = Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    /** A new record to fill and pass to {@link #write}. */
    public static ObjectNode record() {
        return JSON.createObjectNode();
    }

    public synchronized void write(ObjectNode record) throws IOException {
        out.write((JSON.writeValueAsString(record) + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    /** Keeps only the lines of {@code file} whose {@code stage} differs or whose {@code step} is <= {@code step}. */
    public static void truncateAfter(Path file, String stage, long step) throws IOException {
        if (!Files.exists(file)) {
            return;
        }
        StringBuilder kept = new StringBuilder();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (line.isBlank()) {
                continue;
            }
            ObjectNode n;
            try {
                n = (ObjectNode) JSON.readTree(line);
            } catch (IOException | ClassCastException e) {
                continue; // a line cut by a kill: drop it
            }
            if (!stage.equals(n.path("stage").asText()) || n.path("step").asLong() <= step) {
                kept.append(line).append('\n');
            }
        }
        molt.teacher.io.AtomicFiles.writeString(file, kept.toString());
    }

    /** The complete records of {@code file}, in order (lines cut by a kill are skipped); empty when absent. */
    public static java.util.List<ObjectNode> records(Path file) throws IOException {
        java.util.List<ObjectNode> out = new java.util.ArrayList<>();
        if (!Files.exists(file)) {
            return out;
        }
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            try {
                if (!line.isBlank()) {
                    out.add((ObjectNode) JSON.readTree(line));
                }
            } catch (IOException | ClassCastException e) {
                // a truncated line
            }
        }
        return out;
    }

    /** The last complete record in {@code file}, or null. */
    public static ObjectNode last(Path file) throws IOException {
        java.util.List<ObjectNode> all = records(file);
        return all.isEmpty() ? null : all.get(all.size() - 1);
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
