package molt.teacher.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Writes safetensors files: the header first (sizes are known from shapes), then each tensor's bytes in turn, so
 * a model is streamed one tensor at a time. The file appears under its final name only when complete (temporary
 * name, fsync, atomic rename). The header is padded with spaces to a multiple of 8 bytes, as the reference
 * implementation does.
 */
public final class SafetensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SafetensorsWriter() {
    }

    /**
     * One tensor to write: floating-point values (stored as {@code dtype}: F32, F16 or BF16) or integer values
     * (stored as I64 or I32). The supplier is called once, when the tensor's bytes are written.
     */
    public record Tensor(String name, DType dtype, long[] shape, Supplier<float[]> floats, Supplier<long[]> longs,
                         Blocks blocks) {

        public static Tensor ofFloats(String name, DType dtype, long[] shape, float[] values) {
            return new Tensor(name, dtype, shape, () -> values, null, null);
        }

        public static Tensor ofFloats(String name, DType dtype, long[] shape, Supplier<float[]> values) {
            return new Tensor(name, dtype, shape, values, null, null);
        }

        /** Floating-point values produced block by block as they are written (tensors too large for one array). */
        public static Tensor ofBlocks(String name, DType dtype, long[] shape, Blocks blocks) {
            return new Tensor(name, dtype, shape, null, null, blocks);
        }

        public static Tensor ofLongs(String name, DType dtype, long[] shape, long[] values) {
            return new Tensor(name, dtype, shape, null, () -> values, null);
        }

        /** Bytes this tensor takes in the file. */
        public long bytes() {
            return numel() * dtype.bytes();
        }

        long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    public static void write(Path file, List<Tensor> tensors, Map<String, String> metadata) throws IOException {
        write(file, tensors, metadata, true);
    }

    /**
     * Writes a safetensors file; with {@code checksum}, the data's SHA-256 goes into the metadata and every open
     * verifies it. Without, the file is what other tools write (benchmark checkpoints of many GiB, opened often).
     */
    public static void write(Path file, List<Tensor> tensors, Map<String, String> metadata, boolean checksum)
            throws IOException {
        Map<String, String> meta = new java.util.TreeMap<>(metadata == null ? Map.of() : metadata);
        if (checksum) {
            meta.put(DATA_SHA256, "0".repeat(64)); // the real digest, of the same length, once the data is written
        }
        ObjectNode header = header(tensors, meta);
        AtomicFiles.write(file, ch -> {
            int headerBytes = headerBytes(header).limit();
            ch.position(headerBytes);
            HashingChannel data = new HashingChannel(ch, checksum);
            for (Tensor t : tensors) {
                writeTensor(data, t);
            }
            if (checksum) {
                header.with("__metadata__").put(DATA_SHA256, data.hex());
            }
            ByteBuffer head = headerBytes(header);
            if (head.limit() != headerBytes) {
                throw new IllegalStateException("safetensors header changed length while writing " + file);
            }
            ch.position(0);
            writeAll(ch, head);
        });
    }

    /**
     * The metadata key under which molt records the SHA-256 of a file's data section (every byte after the header),
     * checked by {@link SafetensorsFile#open} whenever it is present.
     */
    public static final String DATA_SHA256 = "molt_data_sha256";

    /** The JSON header: sorted metadata (the same bytes in every process), then each tensor in order. */
    private static ObjectNode header(List<Tensor> tensors, Map<String, String> metadata) {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            new java.util.TreeMap<>(metadata).forEach(meta::put);
        }
        Set<String> seen = new HashSet<>();
        long offset = 0;
        for (Tensor t : tensors) {
            if (!seen.add(t.name())) {
                throw new IllegalArgumentException("duplicate tensor name " + t.name());
            }
            boolean floatType = t.dtype() == DType.F32 || t.dtype() == DType.F16 || t.dtype() == DType.BF16;
            boolean intType = t.dtype() == DType.I64 || t.dtype() == DType.I32;
            if (((t.floats() != null || t.blocks() != null) && !floatType) || (t.longs() != null && !intType)) {
                throw new IllegalArgumentException(t.name() + ": cannot store these values as " + t.dtype());
            }
            ObjectNode n = header.putObject(t.name());
            n.put("dtype", t.dtype().safetensorsName());
            ArrayNode sh = n.putArray("shape");
            for (long d : t.shape()) {
                sh.add(d);
            }
            long bytes = t.numel() * t.dtype().bytes();
            n.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        return header;
    }

    /** The 8-byte length and the JSON header, padded with spaces to a multiple of 8, ready to write. */
    private static ByteBuffer headerBytes(ObjectNode header) throws IOException {
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        return head.flip();
    }

    /** A channel that hashes what is written through it (SHA-256). */
    private static final class HashingChannel {
        private final FileChannel ch;
        private final java.security.MessageDigest digest;

        HashingChannel(FileChannel ch, boolean hash) {
            this.ch = ch;
            this.digest = hash ? Digests.sha256() : null;
        }

        void write(ByteBuffer buf) throws IOException {
            ByteBuffer view = buf.duplicate();
            writeAll(ch, buf);
            if (digest != null) {
                digest.update(view);
            }
        }

        String hex() {
            return Digests.hex(digest);
        }
    }

    /** A tensor's values by block: fills {@code into} with the elements from {@code offset} on (row-major). */
    @FunctionalInterface
    public interface Blocks {
        void fill(long offset, float[] into);
    }

    private static void writeTensor(HashingChannel ch, Tensor t) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        if (t.blocks() != null) {
            float[] block = new float[1 << 18];
            for (long off = 0; off < t.numel(); off += block.length) {
                float[] v = t.numel() - off >= block.length ? block : new float[(int) (t.numel() - off)];
                t.blocks().fill(off, v);
                putFloats(ch, buf, t, v);
            }
        } else if (t.floats() != null) {
            float[] v = t.floats().get();
            if (v.length != t.numel()) {
                throw new IllegalArgumentException(t.name() + ": shape needs " + t.numel() + " values, found " + v.length);
            }
            putFloats(ch, buf, t, v);
        } else {
            long[] v = t.longs().get();
            if (v.length != t.numel()) {
                throw new IllegalArgumentException(t.name() + ": shape needs " + t.numel() + " values, found " + v.length);
            }
            for (long x : v) {
                if (buf.remaining() < 8) {
                    flush(ch, buf);
                }
                if (t.dtype() == DType.I64) {
                    buf.putLong(x);
                } else {
                    buf.putInt(Math.toIntExact(x));
                }
            }
        }
        flush(ch, buf);
    }

    private static void putFloats(HashingChannel ch, ByteBuffer buf, Tensor t, float[] v) throws IOException {
        for (float f : v) {
            if (buf.remaining() < 4) {
                flush(ch, buf);
            }
            switch (t.dtype()) {
                case F32 -> buf.putFloat(f);
                case BF16 -> buf.putShort(Floats.floatToBf16(f));
                case F16 -> buf.putShort(Floats.floatToF16(f));
                default -> throw new IllegalStateException(t.dtype().toString());
            }
        }
    }

    private static void flush(HashingChannel ch, ByteBuffer buf) throws IOException {
        buf.flip();
        ch.write(buf);
        buf.clear();
    }

    private static void writeAll(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }
}
