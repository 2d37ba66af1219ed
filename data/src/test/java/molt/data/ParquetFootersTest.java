package molt.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.apache.parquet.format.ColumnChunk;
import org.apache.parquet.format.Encoding;
import org.apache.parquet.format.FileMetaData;
import org.apache.parquet.format.Util;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A shard's bytes do not depend on the order parquet-mr happened to list its encodings in: a footer with every list
 * reversed (what another JVM's identity hash codes can give) is put back to the same bytes, and the file still reads.
 */
class ParquetFootersTest {
    @Test
    void anyEncodingOrderGivesTheSameBytes(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("shard.parquet");
        List<long[]> rows = List.of(new long[] {1, 2, 3, 4, 5}, new long[] {7, 7, 7}, new long[] {9});
        SequenceShards.write(file, rows, CompressionCodecName.ZSTD);
        byte[] written = Files.readAllBytes(file);
        assertFalse(ParquetFooters.canonicalize(file), "what molt writes is already in order");

        int multi = reverseEncodings(file);
        assertTrue(multi > 0, "the shard has columns with several encodings");
        assertFalse(java.util.Arrays.equals(written, Files.readAllBytes(file)), "reversed lists change the bytes");
        assertTrue(ParquetFooters.canonicalize(file));
        assertArrayEquals(written, Files.readAllBytes(file));
        List<long[]> back = SequenceShards.readColumn(file, "input_ids");
        assertEquals(rows.size(), back.size());
        for (int i = 0; i < rows.size(); i++) {
            assertArrayEquals(rows.get(i), back.get(i));
        }
    }

    /** Reverses every column chunk's encodings list in the footer, in place; returns how many lists had two or more. */
    private static int reverseEncodings(Path file) throws Exception {
        byte[] all = Files.readAllBytes(file);
        int length = ByteBuffer.wrap(all, all.length - 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
        int start = all.length - 8 - length;
        FileMetaData meta = Util.readFileMetaData(new ByteArrayInputStream(all, start, length));
        int multi = 0;
        for (var group : meta.getRow_groups()) {
            for (ColumnChunk c : group.getColumns()) {
                List<Encoding> e = new ArrayList<>(c.getMeta_data().getEncodings());
                multi += e.size() > 1 ? 1 : 0;
                Collections.reverse(e);
                c.getMeta_data().setEncodings(e);
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Util.writeFileMetaData(meta, out);
        assertEquals(length, out.size());
        System.arraycopy(out.toByteArray(), 0, all, start, length);
        Files.write(file, all);
        return multi;
    }
}
