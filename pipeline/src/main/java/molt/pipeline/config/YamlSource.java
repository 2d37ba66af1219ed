package molt.pipeline.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import molt.teacher.InputException;

/**
 * YAML read into a JSON tree together with where every value came from (file and line), so errors can say
 * {@code configs/exp.yaml:12: stages[1].lr: ...}. Key paths use dots for fields and [i] for list items.
 */
public final class YamlSource {
    private static final YAMLFactory YAML = new YAMLFactory();
    private static final ObjectMapper MAPPER = new ObjectMapper(YAML);

    private YamlSource() {
    }

    /** A parsed document: the tree and the origin ("file:line") of each key path. */
    public record Parsed(ObjectNode root, Map<String, String> origins) {
    }

    public static Parsed read(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new InputException(file, "no such config file");
        } catch (IOException e) {
            throw new InputException(file, "cannot read: " + e.getMessage());
        }
        Map<String, String> origins = new HashMap<>();
        try (JsonParser p = YAML.createParser(text)) {
            JsonToken first = p.nextToken();
            if (first == null) {
                return new Parsed(JsonNodeFactory.instance.objectNode(), origins);
            }
            if (first != JsonToken.START_OBJECT) {
                throw new InputException(file + ":" + p.currentLocation().getLineNr()
                        + ": expected a mapping of keys at the top level");
            }
            ObjectNode root = (ObjectNode) readValue(p, file, "", origins);
            return new Parsed(root, origins);
        } catch (IOException e) {
            throw new InputException(file + ": not valid YAML: " + molt.teacher.io.JsonErrors.describe(e));
        }
    }

    private static JsonNode readValue(JsonParser p, Path file, String path, Map<String, String> origins)
            throws IOException {
        origins.put(path, file + ":" + p.currentLocation().getLineNr());
        JsonToken t = p.currentToken();
        if (t == JsonToken.START_OBJECT) {
            ObjectNode o = JsonNodeFactory.instance.objectNode();
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String key = p.currentName();
                String child = path.isEmpty() ? key : path + "." + key;
                int line = p.currentLocation().getLineNr();
                if (o.has(key)) {
                    throw new InputException(file + ":" + line + ": " + child + ": duplicate key");
                }
                p.nextToken();
                o.set(key, readValue(p, file, child, origins));
                origins.put(child, file + ":" + line);
            }
            return o;
        }
        if (t == JsonToken.START_ARRAY) {
            ArrayNode a = JsonNodeFactory.instance.arrayNode();
            int i = 0;
            while (p.nextToken() != JsonToken.END_ARRAY) {
                a.add(readValue(p, file, path + "[" + i++ + "]", origins));
            }
            return a;
        }
        return MAPPER.readTree(p);
    }

    /** Parses a single YAML scalar or flow value, as given to {@code --set}. */
    public static JsonNode scalar(String text) {
        try {
            JsonNode n = MAPPER.readTree(text.isEmpty() ? "\"\"" : text);
            return n == null ? JsonNodeFactory.instance.nullNode() : n;
        } catch (IOException e) {
            return JsonNodeFactory.instance.textNode(text);
        }
    }

    static Deque<String> split(String path) {
        Deque<String> parts = new ArrayDeque<>();
        for (String seg : path.split("\\.")) {
            int b = seg.indexOf('[');
            if (b < 0) {
                parts.add(seg);
                continue;
            }
            if (b > 0) {
                parts.add(seg.substring(0, b));
            }
            for (String idx : seg.substring(b).split("\\[")) {
                if (!idx.isEmpty()) {
                    parts.add("[" + idx);
                }
            }
        }
        return parts;
    }
}
