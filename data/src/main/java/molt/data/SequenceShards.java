package molt.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.Types;

/**
 * Parquet shards of packed token sequences: one row per sequence, column {@code input_ids} a list of int32 in the
 * standard LIST layout (what Hugging Face datasets write), so the shards are themselves a usable dataset.
 */
public final class SequenceShards {
    public static final String COLUMN = "input_ids";
    public static final String MASK = "loss_mask";
    public static final MessageType SCHEMA = Types.buildMessage().addField(ParquetColumnReader.int32List(COLUMN))
            .named("sequences");
    /** With a {@code loss_mask} column (0 for prompt tokens, 1 for tokens to learn), for instruction data. */
    public static final MessageType MASKED_SCHEMA = Types.buildMessage().addField(ParquetColumnReader.int32List(COLUMN))
            .addField(ParquetColumnReader.int32List(MASK)).named("sequences");

    private SequenceShards() {
    }

    /** Writes rows to {@code file} under a temporary name, fsyncs it, then renames it into place. */
    public static void write(Path file, List<long[]> rows, CompressionCodecName codec) throws IOException {
        write(file, rows, null, codec);
    }

    /** Writes rows and, when {@code masks} is non-null, their loss masks. */
    public static void write(Path file, List<long[]> rows, List<byte[]> masks, CompressionCodecName codec)
            throws IOException {
        writeHashed(file, rows, masks, codec);
    }

    /**
     * Writes rows (and masks) under a temporary name, fsyncs, hashes and renames the file into place; returns its
     * SHA-256 (hex), for the manifest that lists it.
     */
    static String writeHashed(Path file, List<long[]> rows, List<byte[]> masks, CompressionCodecName codec)
            throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        MessageType schema = masks == null ? SCHEMA : MASKED_SCHEMA;
        SimpleGroupFactory f = new SimpleGroupFactory(schema);
        try {
            try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(tmp)).withType(schema)
                    .withCompressionCodec(codec).build()) {
                for (int i = 0; i < rows.size(); i++) {
                    Group g = f.newGroup();
                    Group list = g.addGroup(COLUMN);
                    for (long id : rows.get(i)) {
                        list.addGroup("list").append("element", Math.toIntExact(id));
                    }
                    if (masks != null) {
                        Group m = g.addGroup(MASK);
                        for (byte b : masks.get(i)) {
                            m.addGroup("list").append("element", (int) b);
                        }
                    }
                    w.write(g);
                }
            }
            ParquetFooters.canonicalize(tmp);
            try (var ch = java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            String sha = Checksums.sha256(tmp);
            AtomicFiles.moveAtomically(tmp, file);
            return sha;
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    /**
     * Reads every row of a shard. A shard of a prepared dataset (listed in the {@code manifest.json} beside it) is
     * first checked against the SHA-256 the manifest records.
     */
    public static List<long[]> read(Path file) {
        PreparedDataset.verifyListed(file);
        return readColumn(file, COLUMN);
    }

    /** Reads every row's loss mask (0/1 per token) of a shard written with masks, checked like {@link #read}. */
    public static List<long[]> readMasks(Path file) {
        PreparedDataset.verifyListed(file);
        return readColumn(file, MASK);
    }

    /** Reads one integer column of a shard without a checksum check (for a caller that has just made it). */
    static List<long[]> readColumn(Path file, String column) {
        List<long[]> rows = new ArrayList<>();
        try (ParquetColumnReader r = new ParquetColumnReader(file, column)) {
            if (r.kind() != ParquetColumnReader.Kind.IDS) {
                throw new InputException(file, "column " + column + " does not hold integers");
            }
            Document d;
            while ((d = r.next()) != null) {
                rows.add(d.ids());
            }
        }
        return rows;
    }
}
