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
 */
public final class TopKCache {
    private static final MessageType SCHEMA = Types.buildMessage()
            .addField(ParquetColumnReader.int32List("input_ids"))
            .addField(ParquetColumnReader.int32List("topk_ids"))
            .addField(Types.requiredList().requiredElement(PrimitiveType.PrimitiveTypeName.FLOAT).named("topk_logprobs"))
            .named("topk");

    /** One sequence: its tokens and, per position, the k most likely next tokens with their log-probabilities. */
    public record Entry(long[] inputIds, int[] topIds, float[] topLogprobs) {
    }

    private TopKCache() {
    }

    public static void write(Path file, int k, List<Entry> entries) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        java.nio.file.Files.deleteIfExists(tmp);
        SimpleGroupFactory f = new SimpleGroupFactory(SCHEMA);
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(tmp)).withType(SCHEMA)
                .withCompressionCodec(CompressionCodecName.ZSTD)
                .withExtraMetaData(java.util.Map.of("molt.topk.k", String.valueOf(k))).build()) {
            for (Entry e : entries) {
                if (e.topIds().length != e.inputIds().length * k || e.topLogprobs().length != e.topIds().length) {
                    throw new IllegalArgumentException("top-k entry: expected " + e.inputIds().length * k
                            + " ids and log-probabilities, found " + e.topIds().length + " and " + e.topLogprobs().length);
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
        AtomicFiles.moveAtomically(tmp, file);
    }

    /** The k a cache file was written with. */
    public static int k(Path file) {
        try (ParquetFileReader r = ParquetFileReader.open(new LocalInputFile(file))) {
            String k = r.getFooter().getFileMetaData().getKeyValueMetaData().get("molt.topk.k");
            if (k == null) {
                throw new InputException(file, "not a molt top-k cache (no molt.topk.k metadata)");
            }
            return Integer.parseInt(k);
        } catch (IOException | RuntimeException e) {
            if (e instanceof InputException ie) {
                throw ie;
            }
            throw new InputException(file, "not a readable top-k cache: " + ParquetColumnReader.oneLine(e));
        }
    }

    public static List<Entry> read(Path file) {
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
