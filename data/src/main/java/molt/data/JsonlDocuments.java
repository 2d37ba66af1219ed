package molt.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import molt.teacher.InputException;

/**
 * Documents from JSON Lines: one object per line, the text in a string field (default {@code text}), or a prompt
 * and a response in two fields for instruction data.
 */
public final class JsonlDocuments implements DocumentSource {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private final String field;
    private final String responseField;
    private final BufferedReader in;
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
            this.in = Files.newBufferedReader(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new InputException(file, "cannot open: " + e.getMessage());
        }
    }

    @Override
    public Document next() {
        try {
            String s;
            while ((s = in.readLine()) != null) {
                line++;
                if (s.isBlank()) {
                    continue;
                }
                JsonNode n;
                try {
                    n = JSON.readTree(s);
                } catch (IOException e) {
                    throw new InputException(file, "line " + line + ": not valid JSON");
                }
                String v = text(n, field);
                return responseField == null ? Document.ofText(v) : Document.ofPair(v, text(n, responseField));
            }
            return null;
        } catch (IOException e) {
            throw new InputException(file, "cannot read: " + e.getMessage());
        }
    }

    private String text(JsonNode n, String key) {
        JsonNode v = n == null ? null : n.get(key);
        if (v == null || !v.isTextual()) {
            throw new InputException(file, "line " + line + ": expected a string field '" + key + "'");
        }
        return v.asText();
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
