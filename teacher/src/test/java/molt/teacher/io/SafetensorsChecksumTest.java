package molt.teacher.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import molt.teacher.InputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files molt writes carry the SHA-256 of their data section, and reading them checks it. */
class SafetensorsChecksumTest {

    private static Path write(Path dir) throws Exception {
        Path f = dir.resolve("w.safetensors");
        SafetensorsWriter.write(f, List.of(
                SafetensorsWriter.Tensor.ofFloats("a", DType.F32, new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6}),
                SafetensorsWriter.Tensor.ofFloats("b", DType.BF16, new long[] {4}, new float[] {0.5f, -1, 2, 8}),
                SafetensorsWriter.Tensor.ofLongs("c", DType.I64, new long[] {2}, new long[] {7, 9})),
                Map.of("format", "pt"));
        return f;
    }

    private static long dataStart(Path f) throws Exception {
        byte[] b = Files.readAllBytes(f);
        return 8 + ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Test
    void theRecordedDigestIsThatOfTheDataSection(@TempDir Path dir) throws Exception {
        Path f = write(dir);
        byte[] b = Files.readAllBytes(f);
        int start = (int) dataStart(f);
        try (SafetensorsFile s = SafetensorsFile.open(f)) {
            assertEquals(Digests.hex(java.util.Arrays.copyOfRange(b, start, b.length)),
                    s.metadata().get(SafetensorsWriter.DATA_SHA256));
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, s.readFloats("a"));
            assertEquals("pt", s.metadata().get("format"));
        }
    }

    @Test
    void anyChangedDataByteIsRefusedNamingTheFile(@TempDir Path dir) throws Exception {
        Path f = write(dir);
        byte[] clean = Files.readAllBytes(f);
        int start = (int) dataStart(f);
        for (int offset : new int[] {0, 7, 24, clean.length - start - 1}) {
            byte[] b = clean.clone();
            b[start + offset] ^= 0x10;
            Files.write(f, b);
            InputException e = assertThrows(InputException.class, () -> SafetensorsFile.open(f).close());
            assertTrue(e.getMessage().contains("w.safetensors") && e.getMessage().contains("does not match the SHA-256"),
                    e.getMessage());
        }
    }

    @Test
    void filesWithoutADigestStillLoad(@TempDir Path dir) throws Exception {
        // A file as other tools write it: no molt metadata.
        String header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        ByteBuffer buf = ByteBuffer.allocate(8 + header.length() + 8).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(header.length()).put(header.getBytes()).putFloat(1.5f).putFloat(-2f);
        Path f = Files.write(dir.resolve("hf.safetensors"), buf.array());
        try (SafetensorsFile s = SafetensorsFile.open(f)) {
            assertArrayEquals(new float[] {1.5f, -2f}, s.readFloats("x"));
        }
    }
}
