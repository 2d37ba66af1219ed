package molt.data;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.List;
import org.apache.parquet.format.ColumnChunk;
import org.apache.parquet.format.ColumnMetaData;
import org.apache.parquet.format.Encoding;
import org.apache.parquet.format.FileMetaData;
import org.apache.parquet.format.RowGroup;
import org.apache.parquet.format.Util;

/**
 * Makes the bytes of a Parquet file that molt writes depend on its contents alone. parquet-mr lists each column
 * chunk's encodings in the iteration order of a {@code HashSet} of enum constants, which follows their identity hash
 * codes: the same rows written in another JVM (another thread history, as in a Spark executor) can list them in
 * another order. Sorting the list (by the encodings' format numbers) fixes it; the footer keeps its length, so it is
 * rewritten in place.
 */
public final class ParquetFooters {
    private static final byte[] MAGIC = "PAR1".getBytes(StandardCharsets.US_ASCII);

    private ParquetFooters() {
    }

    /** Sorts the encodings lists of {@code file}'s footer in place; true if it changed. */
    public static boolean canonicalize(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = ch.size();
            ByteBuffer tail = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, tail, size - 8);
            byte[] magic = new byte[4];
            tail.get(4, magic);
            int length = tail.getInt(0);
            if (!java.util.Arrays.equals(magic, MAGIC) || length <= 0 || length > size - 12) {
                throw new IOException(file + ": not a Parquet file (no footer)");
            }
            long start = size - 8 - length;
            ByteBuffer footer = ByteBuffer.allocate(length);
            readFully(ch, footer, start);
            FileMetaData meta = Util.readFileMetaData(new ByteArrayInputStream(footer.array()));
            boolean changed = false;
            for (RowGroup group : meta.getRow_groups()) {
                for (ColumnChunk chunk : group.getColumns()) {
                    ColumnMetaData column = chunk.getMeta_data();
                    List<Encoding> encodings = column.getEncodings();
                    List<Encoding> sorted = encodings.stream().sorted(Comparator.comparingInt(Encoding::getValue))
                            .toList();
                    if (!sorted.equals(encodings)) {
                        column.setEncodings(new java.util.ArrayList<>(sorted));
                        changed = true;
                    }
                }
            }
            if (!changed) {
                return false;
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream(length);
            Util.writeFileMetaData(meta, out);
            if (out.size() != length) {
                throw new IOException(file + ": the footer with sorted encodings has " + out.size()
                        + " bytes, expected " + length);
            }
            ByteBuffer rewritten = ByteBuffer.wrap(out.toByteArray());
            while (rewritten.hasRemaining()) {
                ch.write(rewritten, start + rewritten.position());
            }
            return true;
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long at) throws IOException {
        while (buf.hasRemaining()) {
            if (ch.read(buf, at + buf.position()) < 0) {
                throw new IOException("unexpected end of file");
            }
        }
        buf.flip();
    }
}
