package molt.pipeline.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.JsonFiles;

/**
 * A stage's checkpoints: one directory per checkpoint, {@code step-000000123}, written under a temporary name,
 * every file fsync'd, then renamed, so a killed process never leaves a checkpoint that looks complete. The
 * index {@code checkpoints.json} (also written atomically) lists the kept steps and the best one; the last
 * {@code keepLast} checkpoints and the best are kept, older ones are deleted.
 */
public final class CheckpointStore {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String INDEX = "checkpoints.json";

    private final Path dir;
    private final int keepLast;

    public CheckpointStore(Path dir, int keepLast) {
        if (keepLast < 1) {
            throw new IllegalArgumentException("keepLast must be >= 1, found " + keepLast);
        }
        this.dir = dir;
        this.keepLast = keepLast;
    }

    /** One kept checkpoint: its step, its validation metric (NaN when none) and its directory. */
    public record Entry(long step, double metric, Path path) {
    }

    /** A fresh, empty temporary directory to write checkpoint {@code step}'s files into. */
    public Path begin(long step) throws IOException {
        Files.createDirectories(dir);
        Path tmp = dir.resolve(".tmp-" + name(step));
        AtomicFiles.deleteTree(tmp);
        Files.createDirectories(tmp);
        return tmp;
    }

    /**
     * Publishes the files written into {@code tmp}: fsyncs them, renames the directory to its final name,
     * updates the index and prunes. {@code metric} is the validation loss (lower is better) or NaN.
     */
    public Entry commit(Path tmp, long step, double metric) throws IOException {
        try (Stream<Path> files = Files.list(tmp)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.WRITE)) {
                    ch.force(true);
                }
            }
        }
        Path target = dir.resolve(name(step));
        AtomicFiles.deleteTree(target);
        AtomicFiles.moveAtomically(tmp, target);
        List<Entry> entries = new ArrayList<>(entries());
        entries.removeIf(e -> e.step() == step);
        entries.add(new Entry(step, metric, target));
        entries.sort(Comparator.comparingLong(Entry::step));
        Entry best = bestOf(entries);
        List<Entry> kept = new ArrayList<>();
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            boolean recent = i >= entries.size() - keepLast;
            if (recent || (best != null && e.step() == best.step())) {
                kept.add(e);
            }
        }
        writeIndex(kept, best);
        for (Entry e : entries) {
            if (!kept.contains(e)) {
                AtomicFiles.deleteTree(e.path());
            }
        }
        return new Entry(step, metric, target);
    }

    /** Kept checkpoints in step order, as listed by the index (empty when none was ever committed). */
    public List<Entry> entries() {
        Path index = dir.resolve(INDEX);
        if (!Files.exists(index)) {
            return List.of();
        }
        ObjectNode root = JsonFiles.readObject(index);
        List<Entry> out = new ArrayList<>();
        for (var n : root.path("kept")) {
            if (!n.path("step").canConvertToLong() || !n.path("step").isIntegralNumber()) {
                throw new InputException(index, "damaged checkpoint index: an entry of 'kept' has no integer step ("
                        + n + "); delete the stage directory to start the stage over");
            }
            long step = n.get("step").asLong();
            double metric = n.hasNonNull("metric") ? n.get("metric").asDouble() : Double.NaN;
            out.add(new Entry(step, metric, dir.resolve(name(step))));
        }
        return out;
    }

    public Optional<Entry> latest() {
        List<Entry> e = entries();
        return e.isEmpty() ? Optional.empty() : Optional.of(e.get(e.size() - 1));
    }

    public Optional<Entry> best() {
        return Optional.ofNullable(bestOf(entries()));
    }

    private static Entry bestOf(List<Entry> entries) {
        Entry best = null;
        for (Entry e : entries) {
            if (!Double.isNaN(e.metric()) && (best == null || e.metric() < best.metric())) {
                best = e;
            }
        }
        return best;
    }

    private void writeIndex(List<Entry> kept, Entry best) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode arr = root.putArray("kept");
        for (Entry e : kept) {
            ObjectNode n = arr.addObject();
            n.put("step", e.step());
            n.put("dir", name(e.step()));
            if (Double.isNaN(e.metric())) {
                n.putNull("metric");
            } else {
                n.put("metric", e.metric());
            }
        }
        if (best == null) {
            root.putNull("best_step");
        } else {
            root.put("best_step", best.step());
        }
        AtomicFiles.writeString(dir.resolve(INDEX), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    }

    private static String name(long step) {
        return String.format("step-%09d", step);
    }
}
