package molt.pipeline.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import molt.teacher.InputException;

/**
 * Loads a run config: the YAML file, the chain of files it {@code extends} (paths relative to the extending
 * file; mappings merge key by key, lists and scalars replace), then {@code --set key.path=value} overrides, then
 * strict binding into {@link RunConfig}.
 */
public final class ConfigLoader {
    private ConfigLoader() {
    }

    public static RunConfig load(Path file, List<String> sets) {
        Map<String, String> origins = new HashMap<>();
        ObjectNode tree = tree(file, sets, origins);
        String defaultName = file.getFileName().toString().replaceFirst("\\.ya?ml$", "");
        Binder b = new Binder(tree, "", origins);
        return RunConfig.bind(b, defaultName);
    }

    /** The config's tree as written: {@code file} with what it extends and {@code sets} applied, before binding. */
    public static ObjectNode tree(Path file, List<String> sets) {
        return tree(file, sets, new HashMap<>());
    }

    private static ObjectNode tree(Path file, List<String> sets, Map<String, String> origins) {
        ObjectNode tree = resolve(file.toAbsolutePath().normalize(), new LinkedHashSet<>(), origins);
        origins.putIfAbsent("", file + ":1"); // a top-level key that is missing altogether is the file's fault
        for (String s : sets) {
            apply(tree, s, origins);
        }
        return tree;
    }

    private static ObjectNode resolve(Path file, Set<Path> chain, Map<String, String> origins) {
        if (!chain.add(file)) {
            throw new InputException(file, "extends itself through " + chain);
        }
        YamlSource.Parsed p = YamlSource.read(file);
        ObjectNode root = p.root();
        JsonNode ext = root.get("extends");
        ObjectNode merged;
        if (ext != null && !ext.isNull()) {
            if (!ext.isTextual()) {
                throw new InputException(p.origins().get("extends") + ": extends: expected a file path, found " + ext);
            }
            Path parent = file.getParent().resolve(ext.asText()).normalize();
            if (!Files.isRegularFile(parent)) {
                throw new InputException(p.origins().get("extends") + ": extends: " + parent + " does not exist");
            }
            merged = resolve(parent, chain, origins);
            merge(merged, root);
        } else {
            merged = root;
        }
        origins.putAll(p.origins());
        merged.remove("extends");
        chain.remove(file);
        return merged;
    }

    /** Deep merge: mappings merge key by key, everything else in {@code over} replaces. */
    static void merge(ObjectNode base, ObjectNode over) {
        over.fields().forEachRemaining(e -> {
            JsonNode b = base.get(e.getKey());
            if (b != null && b.isObject() && e.getValue().isObject()) {
                merge((ObjectNode) b, (ObjectNode) e.getValue());
            } else {
                base.set(e.getKey(), e.getValue().deepCopy());
            }
        });
    }

    /** Applies {@code key.path=value} (lists indexed as stages[1] or stages.1). */
    static void apply(ObjectNode root, String set, Map<String, String> origins) {
        int eq = set.indexOf('=');
        if (eq <= 0) {
            throw new InputException("--set " + set + ": expected key.path=value");
        }
        String path = set.substring(0, eq).trim();
        JsonNode value = YamlSource.scalar(set.substring(eq + 1));
        Deque<String> parts = YamlSource.split(path);
        JsonNode cur = root;
        StringBuilder at = new StringBuilder();
        while (parts.size() > 1) {
            String seg = parts.removeFirst();
            cur = step(cur, seg, set, at);
            if (cur == null || !(cur.isObject() || cur.isArray())) {
                throw new InputException("--set " + set + ": " + at + " is not a mapping or list");
            }
        }
        String last = parts.removeFirst();
        if (cur.isArray()) {
            int i = index(last, set, (ArrayNode) cur);
            ((ArrayNode) cur).set(i, value);
        } else {
            if (last.startsWith("[")) {
                throw new InputException("--set " + set + ": " + at + " is not a list");
            }
            ((ObjectNode) cur).set(last, value);
        }
        String canonical = path.replaceAll("\\.(\\d+)", "[$1]");
        origins.put(canonical, "--set " + set);
    }

    private static JsonNode step(JsonNode cur, String seg, String set, StringBuilder at) {
        if (cur.isArray()) {
            int i = index(seg, set, (ArrayNode) cur);
            at.append('[').append(i).append(']');
            return cur.get(i);
        }
        if (seg.startsWith("[")) {
            throw new InputException("--set " + set + ": " + at + " is not a list");
        }
        at.append(at.length() == 0 ? "" : ".").append(seg);
        ObjectNode o = (ObjectNode) cur;
        if (!o.has(seg)) {
            o.set(seg, JsonNodeFactory.instance.objectNode());
        }
        return o.get(seg);
    }

    private static int index(String seg, String set, ArrayNode arr) {
        String digits = seg.startsWith("[") ? seg.substring(1, seg.length() - (seg.endsWith("]") ? 1 : 0)) : seg;
        try {
            int i = Integer.parseInt(digits);
            if (i < 0 || i >= arr.size()) {
                throw new InputException("--set " + set + ": index " + i + " is outside the list of " + arr.size());
            }
            return i;
        } catch (NumberFormatException e) {
            throw new InputException("--set " + set + ": expected a list index, found '" + seg + "'");
        }
    }
}
