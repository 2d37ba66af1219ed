package molt.pipeline.run;

import ai.djl.Device;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import molt.teacher.Precision;
import molt.teacher.model.LlamaModel;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The teacher a JVM keeps loaded between the top-k units it executes, so that an executor loads it once for all the
 * shards it is given, not once per shard. It is keyed by the checkpoint (its directory and its files' names, sizes
 * and modification times), device and precision; a different key replaces it, and {@link #release} frees it before a
 * unit that loads models of its own (so a training unit never holds two teachers). Units of one JVM run one at a
 * time, so one teacher is kept at most.
 */
public final class KeptTeacher {
    private static final Logger LOG = LogManager.getLogger(KeptTeacher.class);
    private static LlamaModel model;
    private static String key;
    private static int loads;

    private KeptTeacher() {
    }

    /** The teacher in {@code dir} on {@code device} at {@code precision}: the one kept, or loaded and kept. */
    public static synchronized LlamaModel get(Path dir, Device device, Precision precision) {
        String k = key(dir, device, precision);
        if (model != null && k.equals(key)) {
            return model;
        }
        release();
        model = LlamaModel.load(dir, device, precision);
        key = k;
        loads++;
        LOG.info("teacher {} loaded on {} ({} precision); kept for this JVM's next top-k units", dir, device,
                precision);
        return model;
    }

    /** Frees the kept teacher, if any. */
    public static synchronized void release() {
        if (model != null) {
            model.close();
            model = null;
            key = null;
        }
    }

    /** How many times this JVM has loaded a teacher to keep (for tests). */
    public static synchronized int loads() {
        return loads;
    }

    private static String key(Path dir, Device device, Precision precision) {
        Path abs = dir.toAbsolutePath().normalize();
        StringBuilder sb = new StringBuilder(abs.toString()).append('|').append(device).append('|').append(precision);
        try (Stream<Path> files = Files.list(abs)) {
            List<Path> sorted = files.filter(Files::isRegularFile).sorted().toList();
            for (Path f : sorted) {
                sb.append('|').append(f.getFileName()).append(':').append(Files.size(f)).append(':')
                        .append(Files.getLastModifiedTime(f).toMillis());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("teacher " + abs + ": " + e.getMessage(), e);
        }
        return sb.toString();
    }
}
