package molt.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;

/**
 * Which directories molt may write a prepared dataset into, and which files in them it may replace. molt deletes
 * or overwrites only files it can show it wrote: it writes its marker file {@value #MARKER} first, before any shard,
 * into a directory it created or found empty, and later treats a directory as its own only when it holds that
 * marker or a complete {@link PreparedDataset#MANIFEST}. A non-empty directory with neither is refused untouched.
 * Output and source are never the same place, nor one inside the other (compared by real paths).
 */
public final class OutputDirectory {
    /** The marker molt writes into a dataset directory before anything else. */
    public static final String MARKER = "molt-dataset.json";
    static final String MARKER_KIND = "prepared dataset";
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Names of the files molt writes into a dataset directory (temporary files are these with "." and ".tmp"). */
    private static final Pattern MOLT_FILE = Pattern.compile(
            "(topk-)?(train|val)-\\d{5}\\.parquet(\\.sha256)?|" + Pattern.quote(PreparedDataset.MANIFEST) + "|"
                    + Pattern.quote(MARKER));

    private OutputDirectory() {
    }

    /** True when {@code name} is a file name molt gives to what it writes into a dataset directory. */
    static boolean moltFileName(String name) {
        if (name.startsWith(".") && name.endsWith(".tmp")) {
            name = name.substring(1, name.length() - 4);
        }
        return MOLT_FILE.matcher(name).matches();
    }

    /** True when {@code dir} holds molt's marker (a JSON object that says it is molt's). */
    public static boolean hasMarker(Path dir) {
        Path m = dir.resolve(MARKER);
        if (!Files.isRegularFile(m)) {
            return false;
        }
        try {
            JsonNode n = JSON.readTree(Files.readAllBytes(m));
            return n != null && MARKER_KIND.equals(n.path("molt").asText(null));
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Makes {@code dir} molt's for a new preparation: creates it, or takes it when it is empty, writing the marker
     * before anything else; a directory holding the marker (an interrupted preparation) is cleared of the files molt
     * wrote there (anything else in it is left alone). Any other directory is refused untouched.
     */
    static void claim(Path dir) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new InputException(dir, "is a file; expected a directory to write the prepared dataset into");
        }
        if (!Files.exists(dir)) {
            try {
                Files.createDirectories(dir);
            } catch (IOException e) {
                throw new InputException(dir, "cannot create the directory: " + AtomicFiles.describe(e), e);
            }
            writeMarker(dir);
            return;
        }
        List<String> names = list(dir);
        if (names.isEmpty()) {
            writeMarker(dir);
            return;
        }
        if (!hasMarker(dir)) {
            throw refusal(dir, names);
        }
        for (String name : names) {
            Path p = dir.resolve(name);
            if (moltFileName(name) && !name.equals(MARKER) && Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                try {
                    Files.delete(p);
                } catch (IOException e) {
                    throw new InputException(p, "cannot delete this file of an interrupted preparation: "
                            + AtomicFiles.describe(e), e);
                }
            }
        }
    }

    private static InputException refusal(Path dir, List<String> names) {
        if (names.stream().allMatch(OutputDirectory::moltFileName)) {
            return new InputException(dir, "holds dataset shards but neither " + MARKER + " nor "
                    + PreparedDataset.MANIFEST + " (a preparation interrupted by an older molt, or files molt did "
                    + "not write), so molt will not overwrite them; delete the directory or choose another one");
        }
        String shown = String.join(", ", names.subList(0, Math.min(3, names.size())))
                + (names.size() > 3 ? ", ... (" + names.size() + " entries)" : "");
        return new InputException(dir, "is not empty and molt did not prepare it (no " + MARKER + " or "
                + PreparedDataset.MANIFEST + "; it holds " + shown + "); molt writes a dataset only into a new or "
                + "empty directory, so choose another one");
    }

    private static void writeMarker(Path dir) {
        ObjectNode m = JSON.createObjectNode();
        m.put("molt", MARKER_KIND);
        m.put("format", PreparedDataset.FORMAT);
        m.put("created", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        m.put("note", "molt prepared this directory: it may replace or delete the files it wrote here");
        try {
            AtomicFiles.writeString(dir.resolve(MARKER), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(m));
        } catch (IOException e) {
            throw new InputException(dir.resolve(MARKER), "cannot write: " + AtomicFiles.describe(e), e);
        }
    }

    private static List<String> list(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new InputException(dir, "cannot list: " + AtomicFiles.describe(e), e);
        }
    }

    /**
     * Refuses an output directory that is the source, lies inside it, or holds it (by real paths, so links and
     * relative spellings do not hide it). {@code source} null (a built-in corpus) is never in the way.
     */
    public static void checkApart(Path source, Path out) {
        if (source == null) {
            return;
        }
        Path s = realPath(source);
        Path o = realPath(out);
        if (s.equals(o)) {
            throw new InputException(out, "is the data source itself; write the prepared dataset to another directory");
        }
        if (o.startsWith(s)) {
            throw new InputException(out, "is inside the data source " + source
                    + "; write the prepared dataset outside it");
        }
        if (s.startsWith(o)) {
            throw new InputException(out, "holds the data source " + source
                    + "; write the prepared dataset to a directory that does not contain it");
        }
    }

    /** The real path of {@code p}: its nearest existing ancestor's real path with the rest appended. */
    static Path realPath(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        Deque<Path> rest = new ArrayDeque<>();
        Path existing = abs;
        while (existing != null && !Files.exists(existing)) {
            rest.push(existing.getFileName());
            existing = existing.getParent();
        }
        Path real;
        try {
            real = existing == null ? abs.getRoot() : existing.toRealPath();
        } catch (IOException e) {
            real = existing;
        }
        while (!rest.isEmpty()) {
            real = real.resolve(rest.pop());
        }
        return real;
    }
}
