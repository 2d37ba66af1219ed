package molt.teacher.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import molt.teacher.InputException;

/**
 * One safetensors file, memory-mapped. The format (huggingface/safetensors): 8 bytes little-endian u64 N, then
 * N bytes of UTF-8 JSON mapping each tensor name to {dtype, shape, data_offsets [begin, end)} relative to the
 * data section that follows the header, plus an optional "__metadata__" string map. Every field is checked
 * before any byte is read, and tensors are mapped one window (under 2 GiB) at a time, so files of any size
 * load without passing through a Java array of the whole file.
 */
public final class SafetensorsFile implements WeightSource {
    /** Headers larger than this are refused: real ones are kilobytes to a few megabytes. */
    public static final long MAX_HEADER_BYTES = 100L << 20;
    private static final long WINDOW = 1L << 30;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private record Entry(TensorInfo info, long begin, long end) {
    }

    private SafetensorsFile(Path file, FileChannel channel, long dataStart, Map<String, Entry> entries,
                            Map<String, String> metadata) {
        this.file = file;
        this.channel = channel;
        this.dataStart = dataStart;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Opens and validates a safetensors file; every problem is an {@link InputException} naming it. */
    public static SafetensorsFile open(Path file) {
        FileChannel ch;
        try {
            ch = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new InputException(file, "missing safetensors file");
        } catch (IOException e) {
            throw new InputException(file, "cannot open: " + e.getMessage(), e);
        }
        try {
            return parse(file, ch);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    private static SafetensorsFile parse(Path file, FileChannel ch) {
        long size;
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        try {
            size = ch.size();
            if (size < 8) {
                throw new InputException(file, "truncated: " + size + " bytes, too short for the 8-byte header length");
            }
            readFully(ch, lenBuf, 0);
        } catch (IOException e) {
            throw new InputException(file, "cannot read: " + e.getMessage(), e);
        }
        long headerLen = lenBuf.flip().getLong();
        if (headerLen < 0 || headerLen > MAX_HEADER_BYTES) {
            throw new InputException(file, "header length " + Long.toUnsignedString(headerLen)
                    + " is beyond the " + MAX_HEADER_BYTES + "-byte cap (not a safetensors file?)");
        }
        if (headerLen > size - 8) {
            throw new InputException(file, "header length " + headerLen + " exceeds the file (" + size
                    + " bytes): truncated or not a safetensors file");
        }
        ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
        JsonNode root;
        try {
            readFully(ch, hb, 8);
            root = JSON.readTree(hb.array());
        } catch (IOException e) {
            throw new InputException(file, "header is not valid JSON: " + JsonErrors.describe(e));
        }
        if (root == null || !root.isObject()) {
            throw new InputException(file, "header is not a JSON object");
        }
        long dataStart = 8 + headerLen;
        long dataLen = size - dataStart;
        Map<String, Entry> entries = new TreeMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String name = f.getKey();
            JsonNode n = f.getValue();
            if (name.equals("__metadata__")) {
                if (!n.isObject()) {
                    throw new InputException(file, "__metadata__ must be an object of strings");
                }
                n.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            entries.put(name, entry(file, name, n, dataLen));
        }
        checkNoOverlap(file, entries.values());
        String recorded = metadata.get(SafetensorsWriter.DATA_SHA256);
        if (recorded != null) {
            String found = Digests.ofRange(file, ch, dataStart);
            if (!found.equals(recorded)) {
                throw new InputException(file, "its data does not match the SHA-256 recorded when molt wrote it "
                        + "(expected " + recorded + ", found " + found + "): the file was changed or damaged");
            }
        }
        return new SafetensorsFile(file, ch, dataStart, entries, Collections.unmodifiableMap(metadata));
    }

    /** Refuses tensors whose byte ranges overlap. */
    private static void checkNoOverlap(Path file, java.util.Collection<Entry> entries) {
        List<Entry> byOffset = new ArrayList<>(entries);
        byOffset.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        for (int i = 1; i < byOffset.size(); i++) {
            Entry a = byOffset.get(i - 1);
            Entry b = byOffset.get(i);
            if (b.begin() < a.end()) {
                throw new InputException(file, "tensors " + a.info().name() + " [" + a.begin() + ", " + a.end()
                        + ") and " + b.info().name() + " [" + b.begin() + ", " + b.end() + ") overlap");
            }
        }
    }

    private static Entry entry(Path file, String name, JsonNode n, long dataLen) {
        if (!n.isObject()) {
            throw new InputException(file, name + ": expected an object with dtype, shape and data_offsets");
        }
        JsonNode dt = n.get("dtype");
        DType dtype = dt == null || !dt.isTextual() ? null : DType.fromSafetensors(dt.asText());
        if (dtype == null) {
            throw new InputException(file, name + ": unsupported dtype " + dt + " (expected one of F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
        }
        JsonNode sh = n.get("shape");
        if (sh == null || !sh.isArray()) {
            throw new InputException(file, name + ": missing shape");
        }
        long[] shape = new long[sh.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!sh.get(i).isIntegralNumber() || sh.get(i).asLong() < 0) {
                throw new InputException(file, name + ": shape " + sh + " must hold non-negative integers");
            }
            shape[i] = sh.get(i).asLong();
        }
        JsonNode off = n.get("data_offsets");
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber()
                || !off.get(1).isIntegralNumber()) {
            throw new InputException(file, name + ": data_offsets must be [begin, end], found " + off);
        }
        long begin = off.get(0).asLong();
        long end = off.get(1).asLong();
        if (begin < 0 || end < begin || end > dataLen) {
            throw new InputException(file, name + ": data_offsets [" + begin + ", " + end
                    + "] fall outside the data section of " + dataLen + " bytes");
        }
        TensorInfo info = new TensorInfo(name, dtype, shape);
        long want;
        try {
            want = Math.multiplyExact(info.numel(), (long) dtype.bytes());
        } catch (ArithmeticException e) {
            throw new InputException(file, name + ": shape " + info.shapeString() + " is too large");
        }
        if (end - begin != want) {
            throw new InputException(file, name + ": " + dtype + " " + info.shapeString() + " needs " + want
                    + " bytes, but data_offsets span " + (end - begin));
        }
        return new Entry(info, begin, end);
    }

    @Override
    public Path origin() {
        return file;
    }

    @Override
    public Set<String> names() {
        return Collections.unmodifiableSet(new TreeSet<>(entries.keySet()));
    }

    @Override
    public TensorInfo info(String name) {
        return entry(name).info();
    }

    /** The header's {@code __metadata__} strings. */
    public Map<String, String> metadata() {
        return metadata;
    }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new InputException(file, "no tensor named " + name);
        }
        return e;
    }

    @Override
    public float[] readFloats(String name) {
        Entry e = entry(name);
        DType dtype = e.info().dtype();
        if (!dtype.isFloat()) {
            throw new InputException(file, name + ": expected a floating-point tensor, found " + dtype);
        }
        float[] out = new float[checkedLength(e)];
        int[] pos = {0};
        forEachWindow(e, buf -> {
            switch (dtype) {
                case F32 -> {
                    int n = buf.remaining() / 4;
                    buf.asFloatBuffer().get(out, pos[0], n);
                    pos[0] += n;
                }
                case BF16 -> {
                    int n = buf.remaining() / 2;
                    var sb = buf.asShortBuffer();
                    for (int i = 0; i < n; i++) {
                        out[pos[0]++] = Floats.bf16ToFloat(sb.get(i));
                    }
                }
                case F16 -> {
                    int n = buf.remaining() / 2;
                    var sb = buf.asShortBuffer();
                    for (int i = 0; i < n; i++) {
                        out[pos[0]++] = Floats.f16ToFloat(sb.get(i));
                    }
                }
                case F64 -> {
                    int n = buf.remaining() / 8;
                    var db = buf.asDoubleBuffer();
                    for (int i = 0; i < n; i++) {
                        out[pos[0]++] = (float) db.get(i);
                    }
                }
                default -> throw new IllegalStateException(dtype.toString());
            }
        });
        return out;
    }

    /**
     * Reads a range of a floating-point tensor as F16 bits through positional reads (no mapping, so nothing of the
     * file stays resident after the call). F16 elements are copied bit for bit; others go through {@code conversion}.
     */
    @Override
    public void readHalf(String name, long offset, short[] into, HalfConversion conversion) {
        Entry e = entry(name);
        DType dtype = e.info().dtype();
        if (!dtype.isFloat()) {
            throw new InputException(file, name + ": expected a floating-point tensor, found " + dtype);
        }
        if (offset < 0 || offset + into.length > e.info().numel()) {
            throw new IllegalArgumentException(name + ": elements " + offset + ".." + (offset + into.length)
                    + " outside [0, " + e.info().numel() + ")");
        }
        int size = dtype.bytes();
        ByteBuffer buf = ByteBuffer.allocate(Math.min(into.length, HALF_CHUNK) * size).order(ByteOrder.LITTLE_ENDIAN);
        int done = 0;
        try {
            while (done < into.length) {
                int n = Math.min(HALF_CHUNK, into.length - done);
                buf.clear().limit(n * size);
                readFully(channel, buf, dataStart + e.begin() + (offset + done) * size);
                buf.flip();
                for (int i = 0; i < n; i++) {
                    into[done + i] = switch (dtype) {
                        case F16 -> conversion.convert(Floats.f16ToFloat(buf.getShort()));
                        case BF16 -> conversion.convert(Floats.bf16ToFloat(buf.getShort()));
                        case F32 -> conversion.convert(buf.getFloat());
                        case F64 -> conversion.convert((float) buf.getDouble());
                        default -> throw new IllegalStateException(dtype.toString());
                    };
                }
                done += n;
            }
        } catch (IOException ex) {
            throw new InputException(file, name + ": cannot read: " + ex.getMessage(), ex);
        }
    }

    /** Elements per positional read of {@link #readHalf}. */
    private static final int HALF_CHUNK = 1 << 20;

    /** An integer tensor (I64, I32, I16, I8, U8) widened to long. */
    public long[] readLongs(String name) {
        Entry e = entry(name);
        DType dtype = e.info().dtype();
        if (dtype.isFloat() || dtype == DType.BOOL) {
            throw new InputException(file, name + ": expected an integer tensor, found " + dtype);
        }
        long[] out = new long[checkedLength(e)];
        int[] pos = {0};
        forEachWindow(e, buf -> {
            while (buf.hasRemaining()) {
                out[pos[0]++] = switch (dtype) {
                    case I64 -> buf.getLong();
                    case I32 -> buf.getInt();
                    case I16 -> buf.getShort();
                    case I8 -> buf.get();
                    case U8 -> buf.get() & 0xff;
                    default -> throw new IllegalStateException(dtype.toString());
                };
            }
        });
        return out;
    }

    private int checkedLength(Entry e) {
        long n = e.info().numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new InputException(file, e.info().name() + ": " + n + " elements exceed one Java array");
        }
        return (int) n;
    }

    /** Maps the tensor's bytes in windows (a multiple of 8 bytes, under 2 GiB) and hands each to {@code use}. */
    private void forEachWindow(Entry e, java.util.function.Consumer<ByteBuffer> use) {
        long pos = dataStart + e.begin();
        long end = dataStart + e.end();
        try {
            while (pos < end) {
                long len = Math.min(WINDOW, end - pos);
                MappedByteBuffer map = channel.map(FileChannel.MapMode.READ_ONLY, pos, len);
                map.order(ByteOrder.LITTLE_ENDIAN);
                use.accept(map);
                pos += len;
            }
        } catch (IOException ex) {
            throw new InputException(file, e.info().name() + ": cannot read: " + ex.getMessage(), ex);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        long p = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, p);
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
            p += n;
        }
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // The parse error is what matters.
        }
    }

    @Override
    public void close() {
        closeQuietly(channel);
    }
}
