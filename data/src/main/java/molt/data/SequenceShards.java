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
    public static final MessageType SCHEMA = Types.buildMessage().addField(ParquetColumnReader.int32List(COLUMN))
            .named("sequences");

    private SequenceShards() {
    }

    /** Writes rows to {@code file} under a temporary name, then renames it into place. */
    public static void write(Path file, List<long[]> rows, CompressionCodecName codec) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        SimpleGroupFactory f = new SimpleGroupFactory(SCHEMA);
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(tmp)).withType(SCHEMA)
                .withCompressionCodec(codec).build()) {
            for (long[] r : rows) {
                Group g = f.newGroup();
                Group list = g.addGroup(COLUMN);
                for (long id : r) {
                    list.addGroup("list").append("element", Math.toIntExact(id));
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
        List<long[]> rows = new ArrayList<>();
        try (ParquetColumnReader r = new ParquetColumnReader(file, COLUMN)) {
            if (r.kind() != ParquetColumnReader.Kind.IDS) {
                throw new InputException(file, "column " + COLUMN + " does not hold token ids");
            }
            Document d;
            while ((d = r.next()) != null) {
                rows.add(d.ids());
            }
        }
        return rows;
    }
}
