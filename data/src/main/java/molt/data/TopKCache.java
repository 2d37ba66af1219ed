package molt.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Types;

/**
 * The teacher's top-k next-token log-probabilities per position, stored in Parquet next to the tokens so logit
 * distillation can run without the teacher in memory. One row per sequence: {@code input_ids} [L] (int32),
 * {@code topk_ids} [L * k] (int32) and {@code topk_logprobs} [L * k] (float32), row-major by position, plus the
 * k in the file's key-value metadata. Reading returns exactly what was written.
 *
 * <p>Beside each cache file {@code F} molt writes {@code F.sha256} (one line, {@code sha256sum} format:
 * {@code <hex>  <name>}) after the file is in place; every read checks the file against it, so a cache that
 * changed after molt wrote it, or one whose writing was interrupted, is refused rather than trained on.
 */
public final class TopKCache {
    private static final MessageType SCHEMA = Types.buildMessage()
            .addField(ParquetColumnReader.int32List("input_ids"))
            .addField(ParquetColumnReader.int32List("topk_ids"))
            .addField(Types.requiredList().requiredElement(PrimitiveType.PrimitiveTypeName.FLOAT).named("topk_logprobs"))
            .named("topk");
    static final String K_KEY = "molt.topk.k";
    /** Suffix of the checksum file written beside each cache file. */
    public static final String CHECKSUM_SUFFIX = ".sha256";
    private static final String REMEDY = "run 'molt data topk' again";

    /** One sequence: its tokens and, per position, the k most likely next tokens with their log-probabilities. */
    public record Entry(long[] inputIds, int[] topIds, float[] topLogprobs) {
    }

    private TopKCache() {
    }

    /** The checksum file beside a cache file. */
    public static Path checksumFile(Path file) {
        return file.resolveSibling(file.getFileName() + CHECKSUM_SUFFIX);
    }

    /**
     * Checks, before anything is computed, that one shard's top-k targets fit in memory (they are held per shard
     * while written and while read): {@code rows} sequences x {@code positions} x {@code k} ids and
     * log-probabilities within a quarter of this JVM's maximum heap, each row's arrays within Java's array limit.
     * {@code kName} is the option's name for the message.
     */
    public static void checkFits(long rows, int positions, int k, String kName) {
        long perK = rows * positions * 8L; // an int id and a float per entry
        long heap = Runtime.getRuntime().maxMemory();
        long maxK = Math.min(perK == 0 ? Integer.MAX_VALUE : heap / 4 / Math.max(1, perK),
                (Integer.MAX_VALUE - 8L) / Math.max(1, positions));
        if (k > maxK) {
            throw new InputException(kName + " " + k + ": one shard's top-k targets (" + rows + " sequences x "
                    + positions + " positions x " + k + ") take " + Sizes.bytes(Sizes.times(perK, k)) + " in memory, more than a "
                    + "quarter of this JVM's maximum heap (" + Sizes.bytes(heap) + "); "
                    + (maxK >= 1 ? "use " + kName + " <= " + maxK : "prepare the data with fewer rows per shard"));
        }
    }

    /**
     * Writes {@code file} under a temporary name (fsynced, then renamed into place), then its checksum file. An
     * existing file is replaced only when molt wrote it (it has a checksum file or molt's top-k metadata).
     */
    public static void write(Path file, int k, List<Entry> entries) throws IOException {
        checkReplaceable(file);
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        java.nio.file.Files.deleteIfExists(tmp);
        SimpleGroupFactory f = new SimpleGroupFactory(SCHEMA);
        String sha;
        try {
            try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(tmp)).withType(SCHEMA)
                    .withCompressionCodec(CompressionCodecName.ZSTD)
                    .withExtraMetaData(java.util.Map.of(K_KEY, String.valueOf(k))).build()) {
                for (Entry e : entries) {
                    if (e.topIds().length != e.inputIds().length * k || e.topLogprobs().length != e.topIds().length) {
                        throw new IllegalArgumentException("top-k entry: expected " + e.inputIds().length * k
                                + " ids and log-probabilities, found " + e.topIds().length + " and "
                                + e.topLogprobs().length);
                    }
                    Group g = f.newGroup();
                    Group ids = g.addGroup("input_ids");
                    for (long x : e.inputIds()) {
                        ids.addGroup("list").append("element", Math.toIntExact(x));
                    }
                    Group top = g.addGroup("topk_ids");
                    for (int x : e.topIds()) {
                        top.addGroup("list").append("element", x);
                    }
                    Group lp = g.addGroup("topk_logprobs");
                    for (float x : e.topLogprobs()) {
                        lp.addGroup("list").append("element", x);
                    }
                    w.write(g);
                }
            }
            ParquetFooters.canonicalize(tmp);
            try (var ch = java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            sha = Checksums.sha256(tmp);
            // The old checksum goes first: a crash before the new one is written leaves a file without a checksum
            // (refused on read), never a file with another file's checksum.
            java.nio.file.Files.deleteIfExists(checksumFile(file));
            AtomicFiles.moveAtomically(tmp, file);
        } catch (IOException | RuntimeException e) {
            java.nio.file.Files.deleteIfExists(tmp);
            throw e;
        }
        AtomicFiles.writeString(checksumFile(file), sha + "  " + file.getFileName() + "\n");
    }

    /** Refuses to replace a file molt did not write. */
    private static void checkReplaceable(Path file) {
        if (java.nio.file.Files.isDirectory(file)) {
            throw new InputException(file, "is a directory; expected a top-k cache file to write");
        }
        if (!java.nio.file.Files.exists(file) || java.nio.file.Files.isRegularFile(checksumFile(file))) {
            return;
        }
        boolean molts;
        try (ParquetFileReader r = ParquetFileReader.open(new LocalInputFile(file))) {
            molts = r.getFooter().getFileMetaData().getKeyValueMetaData().containsKey(K_KEY);
        } catch (IOException | RuntimeException e) {
            molts = false;
        }
        if (!molts) {
            throw new InputException(file, "exists and is not a top-k cache molt wrote (no " + K_KEY
                    + " metadata, no " + checksumFile(file).getFileName() + "); move it away first");
        }
    }

    /** The SHA-256 recorded for a cache file; a missing or malformed checksum file is an {@link InputException}. */
    static String recordedSha256(Path file) {
        Path side = checksumFile(file);
        String line;
        try {
            line = java.nio.file.Files.readString(side).strip();
        } catch (java.nio.file.NoSuchFileException e) {
            throw new InputException(file, "has no checksum file " + side.getFileName() + " (written by an older or "
                    + "interrupted 'molt data topk'); " + REMEDY);
        } catch (IOException e) {
            throw new InputException(side, "cannot read: " + AtomicFiles.describe(e), e);
        }
        String[] parts = line.split("\\s+", 2);
        if (!Checksums.isSha256(parts[0]) || parts.length != 2
                || !parts[1].replaceFirst("^\\*", "").equals(file.getFileName().toString())) {
            throw new InputException(side, "expected one line '<sha256>  " + file.getFileName() + "', found '"
                    + (line.length() > 100 ? line.substring(0, 97) + "..." : line).replaceAll("\\s+", " ") + "'; "
                    + REMEDY);
        }
        return parts[0];
    }

    /** Checks a cache file against its checksum file (one streaming pass). */
    public static void verify(Path file) {
        Checksums.verify(file, recordedSha256(file), REMEDY);
    }

    /** The k a cache file was written with (its checksum file must be present; the bytes are checked on read). */
    public static int k(Path file) {
        recordedSha256(file);
        try (ParquetFileReader r = ParquetFileReader.open(new LocalInputFile(file))) {
            String k = r.getFooter().getFileMetaData().getKeyValueMetaData().get(K_KEY);
            if (k == null) {
                throw new InputException(file, "not a molt top-k cache (no " + K_KEY + " metadata)");
            }
            return Integer.parseInt(k);
        } catch (IOException | RuntimeException e) {
            if (e instanceof InputException ie) {
                throw ie;
            }
            throw new InputException(file, "not a readable top-k cache: " + ParquetColumnReader.oneLine(e));
        }
    }

    /** Every entry of a cache file, after checking the file against its checksum. */
    public static List<Entry> read(Path file) {
        verify(file);
        k(file);
        List<Entry> out = new ArrayList<>();
        try (ParquetFileReader r = ParquetFileReader.open(new LocalInputFile(file))) {
            MessageType schema = r.getFooter().getFileMetaData().getSchema();
            PageReadStore pages;
            while ((pages = r.readNextRowGroup()) != null) {
                RecordReader<Group> rr = new ColumnIOFactory().getColumnIO(schema).getRecordReader(pages,
                        new GroupRecordConverter(schema));
                for (long i = 0; i < pages.getRowCount(); i++) {
                    Group g = rr.read();
                    Group ids = g.getGroup("input_ids", 0);
                    Group top = g.getGroup("topk_ids", 0);
                    Group lp = g.getGroup("topk_logprobs", 0);
                    long[] a = new long[ids.getFieldRepetitionCount(0)];
                    for (int j = 0; j < a.length; j++) {
                        a[j] = ids.getGroup(0, j).getInteger(0, 0);
                    }
                    int[] b = new int[top.getFieldRepetitionCount(0)];
                    for (int j = 0; j < b.length; j++) {
                        b[j] = top.getGroup(0, j).getInteger(0, 0);
                    }
                    float[] c = new float[lp.getFieldRepetitionCount(0)];
                    for (int j = 0; j < c.length; j++) {
                        c[j] = lp.getGroup(0, j).getFloat(0, 0);
                    }
                    out.add(new Entry(a, b, c));
                }
            }
        } catch (IOException | RuntimeException e) {
            throw new InputException(file, "not a readable top-k cache: " + ParquetColumnReader.oneLine(e));
        }
        return out;
    }
}
