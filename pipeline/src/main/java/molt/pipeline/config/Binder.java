package molt.pipeline.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import molt.teacher.InputException;

/**
 * Typed, strict access to one mapping of a config: every read names its key, defaults fill what is absent, wrong
 * types and out-of-range values fail with the file, line and key path, and {@link #finish} rejects keys nobody
 * read, suggesting the closest known key.
 */
final class Binder {
    private final ObjectNode node;
    private final String path;
    private final Map<String, String> origins;
    private final Set<String> known = new LinkedHashSet<>();

    Binder(ObjectNode node, String path, Map<String, String> origins) {
        this.node = node;
        this.path = path;
        this.origins = origins;
    }

    private String child(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    String where(String key) {
        String p = child(key);
        String o = origins.get(p);
        if (o == null) {
            o = origins.getOrDefault(path, "config");
        }
        return o + ": " + p;
    }

    /** Where this mapping was written: {@code file:line: key.path}. */
    String location() {
        return origins.getOrDefault(path, "config") + ": " + (path.isEmpty() ? "(top level)" : path);
    }

    InputException error(String key, String what) {
        return new InputException(where(key) + ": " + what);
    }

    private JsonNode get(String key) {
        known.add(key);
        JsonNode n = node.get(key);
        return n == null || n.isNull() ? null : n;
    }

    boolean has(String key) {
        return get(key) != null;
    }

    String str(String key, String dflt) {
        JsonNode n = get(key);
        if (n == null) {
            return dflt;
        }
        if (!n.isValueNode() || n.isContainerNode()) {
            throw error(key, "expected a string, found " + n);
        }
        return n.asText();
    }

    String requiredStr(String key) {
        String s = str(key, null);
        if (s == null || s.isBlank()) {
            throw error(key, "is required");
        }
        return s;
    }

    String choice(String key, String dflt, Set<String> allowed) {
        String s = str(key, dflt);
        if (s != null && !allowed.contains(s)) {
            throw error(key, "expected one of " + allowed + ", found '" + s + "'" + suggestion(s, allowed));
        }
        return s;
    }

    long integer(String key, long dflt, long min, long max) {
        JsonNode n = get(key);
        if (n == null) {
            return dflt;
        }
        if (!n.isIntegralNumber() && !(n.isNumber() && n.asDouble() == Math.rint(n.asDouble()))) {
            throw error(key, "expected an integer, found " + n);
        }
        if (!fitsLong(n) || n.asLong() < min || n.asLong() > max) {
            throw error(key, "expected an integer in [" + min + ", " + max + "], found " + n.asText());
        }
        return n.asLong();
    }

    double number(String key, double dflt, double min, double max, boolean minInclusive) {
        JsonNode n = get(key);
        if (n == null) {
            return dflt;
        }
        if (!n.isNumber()) {
            throw error(key, "expected a number, found " + n);
        }
        double v = n.asDouble();
        boolean low = minInclusive ? v < min : v <= min;
        if (low || v > max || Double.isNaN(v)) {
            throw error(key, "expected a number in " + (minInclusive ? "[" : "(") + min + ", " + max + "], found " + v);
        }
        return v;
    }

    boolean bool(String key, boolean dflt) {
        JsonNode n = get(key);
        if (n == null) {
            return dflt;
        }
        if (!n.isBoolean()) {
            throw error(key, "expected true or false, found " + n);
        }
        return n.asBoolean();
    }

    List<String> strings(String key, List<String> dflt) {
        JsonNode n = get(key);
        if (n == null) {
            return dflt;
        }
        if (!n.isArray()) {
            throw error(key, "expected a list, found " + n);
        }
        List<String> out = new ArrayList<>();
        n.forEach(e -> {
            if (!e.isValueNode()) {
                throw error(key, "expected a list of strings, found " + n);
            }
            out.add(e.asText());
        });
        return out;
    }

    List<Integer> ints(String key) {
        JsonNode n = get(key);
        List<Integer> out = new ArrayList<>();
        if (n == null) {
            return out;
        }
        if (!n.isArray()) {
            throw error(key, "expected a list of layer indices, found " + n);
        }
        n.forEach(e -> {
            if (!e.isIntegralNumber() || !e.canConvertToInt()) {
                throw error(key, "expected a list of integers in [" + Integer.MIN_VALUE + ", " + Integer.MAX_VALUE
                        + "], found " + n);
            }
            out.add(e.asInt());
        });
        return out;
    }

    /** Whether a number is exactly a 64-bit integer: larger ones would wrap (or saturate) when read as long. */
    private static boolean fitsLong(JsonNode n) {
        return n.isIntegralNumber() ? n.canConvertToLong() : Math.abs(n.asDouble()) < 0x1p63;
    }

    /** A nested mapping (empty when absent). */
    Binder object(String key) {
        JsonNode n = get(key);
        if (n == null) {
            return new Binder(com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode(), child(key),
                    origins);
        }
        if (!n.isObject()) {
            throw error(key, "expected a mapping, found " + n);
        }
        return new Binder((ObjectNode) n, child(key), origins);
    }

    /** A list of mappings. */
    List<Binder> objects(String key) {
        JsonNode n = get(key);
        List<Binder> out = new ArrayList<>();
        if (n == null) {
            return out;
        }
        if (!n.isArray()) {
            throw error(key, "expected a list, found " + n);
        }
        for (int i = 0; i < n.size(); i++) {
            String p = child(key) + "[" + i + "]";
            if (!n.get(i).isObject()) {
                throw new InputException(origins.getOrDefault(p, "config") + ": " + p + ": expected a mapping, found "
                        + n.get(i));
            }
            out.add(new Binder((ObjectNode) n.get(i), p, origins));
        }
        return out;
    }

    /**
     * The mapping under {@code key} merged onto {@code base} (mappings key by key, other values replace): how a
     * variant restates only what it changes. Errors name {@code key}'s path.
     */
    Binder mergedOnto(String key, ObjectNode base) {
        ObjectNode merged = base.deepCopy();
        ConfigLoader.merge(merged, object(key).raw());
        return new Binder(merged, child(key), origins);
    }

    ObjectNode raw() {
        return node;
    }

    /** Rejects keys that were never read. */
    void finish() {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!known.contains(k)) {
                throw error(k, "unknown key" + suggestion(k, known));
            }
        }
    }

    static String suggestion(String key, Set<String> candidates) {
        String best = null;
        int bestD = Integer.MAX_VALUE;
        for (String c : candidates) {
            int d = levenshtein(key, c);
            if (d < bestD) {
                bestD = d;
                best = c;
            }
        }
        if (best != null && bestD <= Math.max(2, key.length() / 3)) {
            return " (did you mean '" + best + "'?)";
        }
        return candidates.isEmpty() ? "" : " (known keys: " + String.join(", ", candidates) + ")";
    }

    static int levenshtein(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
