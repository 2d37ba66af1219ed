package molt.teacher.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import molt.teacher.InputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {

    @Test
    void sixteenBitConversionsMatchValuesWorkedByHand() {
        assertEquals(1.0f, Floats.bf16ToFloat((short) 0x3F80));
        assertEquals(-2.0f, Floats.bf16ToFloat((short) 0xC000));
        assertEquals(1.0f, Floats.f16ToFloat((short) 0x3C00));
        assertEquals(-2.0f, Floats.f16ToFloat((short) 0xC000));
        assertEquals(65504f, Floats.f16ToFloat((short) 0x7BFF));
        assertEquals((float) Math.pow(2, -24), Floats.f16ToFloat((short) 0x0001)); // smallest subnormal
        assertEquals(Float.POSITIVE_INFINITY, Floats.f16ToFloat((short) 0x7C00));
        assertTrue(Float.isNaN(Floats.f16ToFloat((short) 0x7E00)));
        // 1 + 2^-8 lies halfway between BF16 neighbours 1 and 1 + 2^-7: ties to even gives 1.
        assertEquals((short) 0x3F80, Floats.floatToBf16(1f + (float) Math.pow(2, -8)));
        assertEquals((short) 0x3F81, Floats.floatToBf16(1f + 3 * (float) Math.pow(2, -9)));
        assertEquals((short) 0x3C00, Floats.floatToF16(1f));
        assertEquals((short) 0x7C00, Floats.floatToF16(1e6f));
        assertEquals((short) 0x0001, Floats.floatToF16((float) Math.pow(2, -24)));
        for (int bits = 0; bits < 0x10000; bits++) {
            float f = Floats.f16ToFloat((short) bits);
            if (!Float.isNaN(f)) {
                assertEquals((short) bits, Floats.floatToF16(f), "f16 round trip of " + Integer.toHexString(bits));
            }
            float g = Floats.bf16ToFloat((short) bits);
            if (!Float.isNaN(g)) {
                assertEquals((short) bits, Floats.floatToBf16(g), "bf16 round trip of " + Integer.toHexString(bits));
            }
        }
    }

    @Test
    void writerAndReaderRoundTripEveryDtype(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("t.safetensors");
        float[] v = {0.5f, -1.25f, 3.0f, 1e-3f, -7.75f, 100f};
        long[] ids = {0, 5, -3, 1L << 40};
        SafetensorsWriter.write(f, List.of(
                SafetensorsWriter.Tensor.ofFloats("a.f32", DType.F32, new long[] {2, 3}, v),
                SafetensorsWriter.Tensor.ofFloats("b.bf16", DType.BF16, new long[] {6}, v),
                SafetensorsWriter.Tensor.ofFloats("c.f16", DType.F16, new long[] {3, 2}, v),
                SafetensorsWriter.Tensor.ofLongs("d.i64", DType.I64, new long[] {4}, ids),
                SafetensorsWriter.Tensor.ofFloats("e.scalar", DType.F32, new long[] {}, new float[] {42f})),
                Map.of("format", "pt", "note", "test"));
        try (SafetensorsFile s = SafetensorsFile.open(f)) {
            Map<String, String> meta = new java.util.HashMap<>(s.metadata());
            assertEquals(64, meta.remove(SafetensorsWriter.DATA_SHA256).length(), "the data section's SHA-256");
            assertEquals(Map.of("format", "pt", "note", "test"), meta);
            assertArrayEquals(v, s.readFloats("a.f32"));
            float[] bf = s.readFloats("b.bf16");
            float[] hf = s.readFloats("c.f16");
            for (int i = 0; i < v.length; i++) {
                assertEquals(Floats.bf16ToFloat(Floats.floatToBf16(v[i])), bf[i]);
                assertEquals(Floats.f16ToFloat(Floats.floatToF16(v[i])), hf[i]);
                assertEquals(v[i], bf[i], Math.abs(v[i]) / 128);
                assertEquals(v[i], hf[i], Math.abs(v[i]) / 1024);
            }
            assertArrayEquals(ids, s.readLongs("d.i64"));
            assertArrayEquals(new float[] {42f}, s.readFloats("e.scalar"));
            assertArrayEquals(new long[] {3, 2}, s.info("c.f16").shape());
            assertThrows(InputException.class, () -> s.readFloats("d.i64"));
            assertThrows(InputException.class, () -> s.readLongs("a.f32"));
            assertThrows(InputException.class, () -> s.info("missing"));
        }
        // The header length is a multiple of 8, as the reference writer pads it.
        long headerLen = ByteBuffer.wrap(readPrefix(f, 8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8);
        assertFalse(Files.exists(dir.resolve(".t.safetensors.tmp")));
    }

    @Test
    void filesOverTwoGibibytesLoad(@TempDir Path dir) throws Exception {
        // A sparse file: a 2.25 GiB padding tensor (never read) followed by a small tensor past the 2^31 mark.
        long pad = (1L << 31) + (1L << 28);
        String header = "{\"pad\":{\"dtype\":\"U8\",\"shape\":[" + pad + "],\"data_offsets\":[0," + pad + "]},"
                + "\"late\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[" + pad + "," + (pad + 16) + "]}}";
        byte[] h = pad8(header);
        Path f = dir.resolve("big.safetensors");
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length);
            raf.write(len.array());
            raf.write(h);
            long dataStart = 8 + h.length;
            raf.setLength(dataStart + pad + 16);
            raf.seek(dataStart + pad);
            ByteBuffer vals = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            vals.putFloat(1.5f).putFloat(-2f).putFloat(3.25f).putFloat(4f);
            raf.write(vals.array());
        }
        try (SafetensorsFile s = SafetensorsFile.open(f)) {
            assertTrue(Files.size(f) > (1L << 31));
            assertArrayEquals(new float[] {1.5f, -2f, 3.25f, 4f}, s.readFloats("late"));
        } finally {
            Files.delete(f);
        }
    }

    @Test
    void malformedFilesAreInputErrorsNamingTheFile(@TempDir Path dir) throws Exception {
        assertBad(dir, "short", new byte[] {1, 2, 3}, "too short");
        assertBad(dir, "cap", withLength(Long.MAX_VALUE, new byte[8]), "cap");
        assertBad(dir, "beyond", withLength(1000, "{}".getBytes(StandardCharsets.UTF_8)), "exceeds the file");
        assertBad(dir, "notjson", withLength(8, "notjson!".getBytes(StandardCharsets.UTF_8)), "not valid JSON");
        assertBad(dir, "array", file("[1,2,3]", 0), "not a JSON object");
        assertBad(dir, "outside", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
                "outside the data section");
        assertBad(dir, "overlap", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16), "overlap");
        assertBad(dir, "dtype", file("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                "unsupported dtype");
        assertBad(dir, "size", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
                "needs 12 bytes");
        assertBad(dir, "shape", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8),
                "non-negative");
        InputException missing = assertThrows(InputException.class,
                () -> SafetensorsFile.open(dir.resolve("absent.safetensors")));
        assertTrue(missing.getMessage().contains("absent.safetensors"));
    }

    private static void assertBad(Path dir, String name, byte[] content, String expected) throws Exception {
        Path f = dir.resolve(name + ".safetensors");
        Files.write(f, content);
        InputException e = assertThrows(InputException.class, () -> SafetensorsFile.open(f).close(), name);
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), name + ": " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    private static byte[] pad8(String json) {
        StringBuilder sb = new StringBuilder(json);
        while (sb.length() % 8 != 0) {
            sb.append(' ');
        }
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] file(String header, int dataBytes) {
        byte[] h = pad8(header);
        byte[] all = withLength(h.length, h);
        byte[] out = new byte[all.length + dataBytes];
        System.arraycopy(all, 0, out, 0, all.length);
        return out;
    }

    private static byte[] withLength(long len, byte[] rest) {
        ByteBuffer b = ByteBuffer.allocate(8 + rest.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(len).put(rest);
        return b.array();
    }

    private static byte[] readPrefix(Path f, int n) {
        try (var in = Files.newInputStream(f)) {
            return in.readNBytes(n);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
