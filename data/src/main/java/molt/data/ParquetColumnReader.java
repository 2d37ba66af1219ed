package molt.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import molt.teacher.InputException;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;
import org.apache.parquet.schema.Types;

/**
 * Streams one column of a Parquet file, row group by row group (memory holds one row group of that column).
 * Accepts a string column, or a list of int32/int64 in the standard three-level LIST layout that pyarrow and
 * Hugging Face datasets write, or the legacy two-level layout. Every problem is an {@link InputException} that
 * names the file.
 */
public final class ParquetColumnReader implements AutoCloseable {
    /** What kind of values the column holds. */
    public enum Kind { TEXT, IDS }

    private final Path file;
    private final String column;
    private final ParquetFileReader reader;
    private final MessageType projection;
    private final Kind kind;
    private RecordReader<Group> records;
    private long remaining;

    public ParquetColumnReader(Path file, String column) {
        this.file = file;
        this.column = column;
        try {
            if (Files.size(file) < 12) {
                throw new InputException(file, "truncated: " + Files.size(file) + " bytes is too short for a Parquet file");
            }
            this.reader = ParquetFileReader.open(new LocalInputFile(file));
        } catch (InputException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new InputException(file, "not a readable Parquet file (corrupt or truncated): " + oneLine(e));
        }
        try {
            MessageType schema = reader.getFooter().getFileMetaData().getSchema();
            if (!schema.containsField(column)) {
                List<String> names = new ArrayList<>();
                schema.getFields().forEach(f -> names.add(f.getName()));
                throw new InputException(file, "has no column '" + column + "' (columns: " + names + ")"
                        + preparedHint(schema));
            }
            Type field = schema.getType(column);
            this.kind = kindOf(field);
            this.projection = new MessageType(schema.getName(), field);
            reader.setRequestedSchema(projection);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /**
     * For a missing column in a file that has the layout of molt's own shards: what the file is (a shard of a
     * prepared dataset, or of an interrupted or incomplete preparation), since it holds token sequences, not
     * documents. Empty for any other file.
     */
    private String preparedHint(MessageType schema) {
        boolean shard = schema.getName().equals(SequenceShards.SCHEMA.getName())
                && schema.getFieldCount() >= 1 && schema.getFieldCount() <= 2
                && schema.getFields().stream().allMatch(f -> f.getName().equals(SequenceShards.COLUMN)
                        || f.getName().equals(SequenceShards.MASK));
        if (!shard) {
            return "";
        }
        Path dir = file.toAbsolutePath().getParent();
        if (dir != null && PreparedDataset.isPrepared(dir)) {
            return ": it is a shard of the dataset molt prepared in " + dir + " (packed token sequences), not a source"
                    + " of documents";
        }
        return ": it is a shard of an interrupted or incomplete molt preparation (no " + PreparedDataset.MANIFEST
                + " beside it; packed token sequences), not a source of documents";
    }

    private Kind kindOf(Type field) {
        if (field.isPrimitive()) {
            PrimitiveType p = field.asPrimitiveType();
            if (p.getPrimitiveTypeName() == PrimitiveType.PrimitiveTypeName.BINARY
                    && p.getLogicalTypeAnnotation() instanceof LogicalTypeAnnotation.StringLogicalTypeAnnotation
                    && !field.isRepetition(Type.Repetition.REPEATED)) {
                return Kind.TEXT;
            }
            if (field.isRepetition(Type.Repetition.REPEATED) && isInt(p)) {
                return Kind.IDS; // legacy two-level list
            }
        } else {
            PrimitiveType element = listElement(field.asGroupType());
            if (element != null && isInt(element)) {
                return Kind.IDS;
            }
        }
        throw new InputException(file, "column '" + column + "' has type " + field.toString().trim()
                + "; expected a string, or a list of int32 or int64 token ids");
    }

    private static boolean isInt(PrimitiveType p) {
        return p.getPrimitiveTypeName() == PrimitiveType.PrimitiveTypeName.INT32
                || p.getPrimitiveTypeName() == PrimitiveType.PrimitiveTypeName.INT64;
    }

    /** The primitive element of a LIST group (three-level or two-level), or null. */
    private static PrimitiveType listElement(GroupType g) {
        if (g.getFieldCount() != 1) {
            return null;
        }
        Type inner = g.getType(0);
        if (!inner.isRepetition(Type.Repetition.REPEATED)) {
            return null;
        }
        if (inner.isPrimitive()) {
            return inner.asPrimitiveType();
        }
        GroupType rep = inner.asGroupType();
        if (rep.getFieldCount() == 1 && rep.getType(0).isPrimitive()) {
            return rep.getType(0).asPrimitiveType();
        }
        return null;
    }

    public Kind kind() {
        return kind;
    }

    /** Total rows in the file. */
    public long rows() {
        return reader.getRecordCount();
    }

    /** The next row's value as a {@link Document}, or null at the end of the file. */
    public Document next() {
        try {
            while (remaining == 0) {
                PageReadStore pages = reader.readNextRowGroup();
                if (pages == null) {
                    return null;
                }
                remaining = pages.getRowCount();
                records = new ColumnIOFactory().getColumnIO(projection).getRecordReader(pages,
                        new GroupRecordConverter(projection));
            }
            remaining--;
            Group g = records.read();
            if (g.getFieldRepetitionCount(0) == 0) {
                return kind == Kind.TEXT ? Document.ofText("") : Document.ofIds(new long[0]);
            }
            if (kind == Kind.TEXT) {
                return Document.ofText(g.getString(0, 0));
            }
            return Document.ofIds(ids(g));
        } catch (IOException | RuntimeException e) {
            if (e instanceof InputException ie) {
                throw ie;
            }
            throw new InputException(file, "corrupt data in column '" + column + "': " + oneLine(e));
        }
    }

    private long[] ids(Group g) {
        Type field = projection.getType(0);
        if (field.isPrimitive()) {
            int n = g.getFieldRepetitionCount(0);
            long[] out = new long[n];
            for (int i = 0; i < n; i++) {
                out[i] = value(g, 0, i, field.asPrimitiveType());
            }
            return out;
        }
        Group list = g.getGroup(0, 0);
        Type inner = field.asGroupType().getType(0);
        int n = list.getFieldRepetitionCount(0);
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            if (inner.isPrimitive()) {
                out[i] = value(list, 0, i, inner.asPrimitiveType());
            } else {
                Group el = list.getGroup(0, i);
                if (el.getFieldRepetitionCount(0) == 0) {
                    throw new InputException(file, "column '" + column + "' holds a null token id");
                }
                out[i] = value(el, 0, 0, inner.asGroupType().getType(0).asPrimitiveType());
            }
        }
        return out;
    }

    private static long value(Group g, int field, int index, PrimitiveType t) {
        return t.getPrimitiveTypeName() == PrimitiveType.PrimitiveTypeName.INT32 ? g.getInteger(field, index)
                : g.getLong(field, index);
    }

    static String oneLine(Exception e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return m.lines().findFirst().orElse(m);
    }

    /** A three-level LIST of int32 named {@code name}, as pyarrow writes it. */
    public static Type int32List(String name) {
        return Types.requiredList().requiredElement(PrimitiveType.PrimitiveTypeName.INT32).named(name);
    }

    @Override
    public void close() {
        try {
            if (reader != null) {
                reader.close();
            }
        } catch (IOException e) {
            // Reading is done; a close failure loses nothing.
        }
    }
}
