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

    /** Writes rows to {@code file} under a temporary name, then renames it into place. */
    public static void write(Path file, List<long[]> rows, CompressionCodecName codec) throws IOException {
        write(file, rows, null, codec);
    }

    /** Writes rows and, when {@code masks} is non-null, their loss masks. */
    public static void write(Path file, List<long[]> rows, List<byte[]> masks, CompressionCodecName codec)
            throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        MessageType schema = masks == null ? SCHEMA : MASKED_SCHEMA;
        SimpleGroupFactory f = new SimpleGroupFactory(schema);
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
        try (var ch = java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.WRITE)) {
            ch.force(true);
        }
        AtomicFiles.moveAtomically(tmp, file);
    }

    /** Reads every row of a shard. */
    public static List<long[]> read(Path file) {
        return readColumn(file, COLUMN);
    }

    /** Reads every row's loss mask (0/1 per token) of a shard written with masks. */
    public static List<long[]> readMasks(Path file) {
        return readColumn(file, MASK);
    }

    private static List<long[]> readColumn(Path file, String column) {
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
