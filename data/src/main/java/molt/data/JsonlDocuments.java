package molt.data;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;

/**
 * Documents from JSON Lines: one object per line, the text in a string field (default {@code text}), or a prompt
 * and a response in two fields for instruction data.
 *
 * <p>Lines are read as bytes and checked as UTF-8 one at a time, so a bad line is reported as {@code FILE:LINE}.
 * Jackson's default limits (a string of at most 20 million characters) are lifted: a line is bounded only by what a
 * Java array holds, so any valid line parses.
 */
public final class JsonlDocuments implements DocumentSource {
    /** A line is read into one array: the longest a Java array reliably holds. */
    static final int MAX_LINE_BYTES = Integer.MAX_VALUE - 16;
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxStringLength(Integer.MAX_VALUE)
                    .maxNameLength(Integer.MAX_VALUE)
                    .maxDocumentLength(-1)
                    .build())
            .build());
    private final Path file;
    private final String field;
    private final String responseField;
    private final InputStream in;
    private final byte[] buf = new byte[1 << 16];
    private int pos;
    private int lim;
    private byte[] lineBytes = new byte[1 << 12];
    private int lineLength;
    private long line;

    public JsonlDocuments(Path file, String field) {
        this(file, field, null);
    }

    /** With {@code responseField} non-null, {@code field} is the prompt and documents are prompt/response pairs. */
    public JsonlDocuments(Path file, String field, String responseField) {
        this.file = file;
        this.field = field;
        this.responseField = responseField;
        try {
            this.in = Files.newInputStream(file);
        } catch (IOException e) {
            throw new InputException(file, "cannot open: " + AtomicFiles.describe(e));
        }
    }

    @Override
    public Document next() {
        try {
            while (readLine()) {
                line++;
                int start = line == 1 && startsWithBom() ? 3 : 0;
                if (blank(start)) {
                    continue;
                }
                int bad = invalidUtf8(lineBytes, start, lineLength);
                if (bad >= 0) {
                    throw new InputException(where() + ": not valid UTF-8 (byte 0x"
                            + String.format("%02X", lineBytes[bad] & 0xFF) + " at byte " + (bad + 1) + " of the line)");
                }
                JsonNode n;
                try {
                    n = JSON.readTree(lineBytes, start, lineLength - start);
                } catch (IOException e) {
                    throw new InputException(where() + ": not valid JSON: " + describe(e));
                }
                if (n == null || !n.isObject()) {
                    throw new InputException(where() + ": expected a JSON object, found "
                            + (n == null ? "nothing" : kind(n)));
                }
                String v = text(n, field);
                return responseField == null ? Document.ofText(v) : Document.ofPair(v, text(n, responseField));
            }
            return null;
        } catch (IOException e) {
            throw new InputException(file, "cannot read: " + AtomicFiles.describe(e));
        }
    }

    private String where() {
        return file + ":" + line;
    }

    /** Reads the next line's bytes (without its terminator, \n or \r\n) into lineBytes; false at the end. */
    private boolean readLine() throws IOException {
        lineLength = 0;
        boolean any = false;
        while (true) {
            if (pos == lim) {
                int n = in.read(buf);
                if (n < 0) {
                    if (any && lineLength > 0 && lineBytes[lineLength - 1] == '\r') {
                        lineLength--;
                    }
                    return any;
                }
                pos = 0;
                lim = n;
                continue;
            }
            any = true;
            int start = pos;
            while (pos < lim && buf[pos] != '\n') {
                pos++;
            }
            append(start, pos - start);
            if (pos < lim) {
                pos++; // the \n
                if (lineLength > 0 && lineBytes[lineLength - 1] == '\r') {
                    lineLength--;
                }
                return true;
            }
        }
    }

    private void append(int from, int n) {
        if (n == 0) {
            return;
        }
        if ((long) lineLength + n > MAX_LINE_BYTES) {
            throw new InputException(file + ":" + (line + 1) + ": line longer than " + MAX_LINE_BYTES
                    + " bytes, more than molt can hold as one document");
        }
        if (lineLength + n > lineBytes.length) {
            long grown = Math.max((long) lineLength + n, Math.min(2L * lineBytes.length, MAX_LINE_BYTES));
            lineBytes = java.util.Arrays.copyOf(lineBytes, (int) grown);
        }
        System.arraycopy(buf, from, lineBytes, lineLength, n);
        lineLength += n;
    }

    private boolean startsWithBom() {
        return lineLength >= 3 && (lineBytes[0] & 0xFF) == 0xEF && (lineBytes[1] & 0xFF) == 0xBB
                && (lineBytes[2] & 0xFF) == 0xBF;
    }

    private boolean blank(int start) {
        for (int i = start; i < lineLength; i++) {
            byte b = lineBytes[i];
            if (b != ' ' && b != '\t' && b != '\r' && b != '\f' && b != 0x0B) {
                return false;
            }
        }
        return true;
    }

    /**
     * The index of the first byte of {@code b[from, to)} that is not part of well-formed UTF-8 (no overlong forms,
     * no surrogates, nothing above U+10FFFF: what Java's strict decoder accepts), or -1 when all of it is.
     */
    static int invalidUtf8(byte[] b, int from, int to) {
        int i = from;
        while (i < to) {
            int c = b[i] & 0xFF;
            if (c < 0x80) {
                i++;
                continue;
            }
            int n;
            int lo = 0x80;
            int hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                n = 1;
            } else if (c >= 0xE0 && c <= 0xEF) {
                n = 2;
                if (c == 0xE0) {
                    lo = 0xA0;
                } else if (c == 0xED) {
                    hi = 0x9F;
                }
            } else if (c >= 0xF0 && c <= 0xF4) {
                n = 3;
                if (c == 0xF0) {
                    lo = 0x90;
                } else if (c == 0xF4) {
                    hi = 0x8F;
                }
            } else {
                return i;
            }
            for (int j = 1; j <= n; j++) {
                if (i + j >= to) {
                    return i;
                }
                int d = b[i + j] & 0xFF;
                if (j == 1 ? d < lo || d > hi : d < 0x80 || d > 0xBF) {
                    return i;
                }
            }
            i += n + 1;
        }
        return -1;
    }

    /** Jackson's reason in one line, with the column (the line is the one already named). */
    private static String describe(IOException e) {
        if (e instanceof JsonProcessingException j) {
            String msg = j.getOriginalMessage().lines().findFirst().orElse("parse error")
                    .replaceAll("\\s*\\(start marker at \\[Source:.*", "")
                    .replaceAll("\\s*\\(for Object starting at \\[Source:.*", "");
            JsonLocation loc = j.getLocation();
            return loc == null || loc.getColumnNr() < 1 ? msg : msg + " at column " + loc.getColumnNr();
        }
        return AtomicFiles.describe(e);
    }

    private String text(JsonNode n, String key) {
        JsonNode v = n.get(key);
        if (v == null) {
            List<String> names = new ArrayList<>();
            n.fieldNames().forEachRemaining(names::add);
            throw new InputException(where() + ": expected a string field '" + key + "', found no such field"
                    + (names.isEmpty() ? "" : " (fields: " + String.join(", ", names.subList(0, Math.min(8, names.size())))
                    + (names.size() > 8 ? ", ..." : "") + ")"));
        }
        if (!v.isTextual()) {
            throw new InputException(where() + ": expected a string field '" + key + "', found " + kind(v));
        }
        return v.asText();
    }

    private static String kind(JsonNode v) {
        return switch (v.getNodeType()) {
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            default -> v.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
        };
    }

    @Override
    public Path location() {
        return file;
    }

    @Override
    public boolean pairs() {
        return responseField != null;
    }

    @Override
    public String identity() {
        try {
            return "jsonl:" + file.toAbsolutePath().normalize() + "#" + field
                    + (responseField == null ? "" : "+" + responseField) + ";" + Files.size(file) + ":"
                    + Files.getLastModifiedTime(file).toMillis();
        } catch (IOException e) {
            throw new InputException(file, "cannot stat: " + e.getMessage());
        }
    }

    @Override
    public void close() {
        try {
            in.close();
        } catch (IOException e) {
            // Nothing was written.
        }
    }
}
