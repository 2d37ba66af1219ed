package molt.pipeline.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import molt.pipeline.BuildInfo;
import molt.pipeline.config.RunConfig;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.JsonFiles;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * A run directory's {@code config.resolved.json}: the resolved config with molt's and DJL's versions, written at
 * the start of every run. It decides whether a run resumes: a directory made by the same resolved config is
 * resumed, one made by a different config is refused, naming the keys that differ.
 */
public final class ResolvedConfig {
    private static final Logger LOG = LogManager.getLogger(ResolvedConfig.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String FILE = "config.resolved.json";

    private ResolvedConfig() {
    }

    /**
     * Header stored in the run directory and in every checkpoint: versions, threads, how frozen weights multiply
     * ({@link molt.teacher.model.Frozen#products}) and the allocator's mode, beside the resolved config.
     */
    static ObjectNode header(RunConfig cfg) {
        ObjectNode h = JSON.createObjectNode();
        h.put("molt_version", BuildInfo.version());
        h.put("molt_commit", BuildInfo.commit());
        h.put("djl_version", BuildInfo.djlVersion());
        h.put("threads", cfg.threads());
        h.put("available_processors", Runtime.getRuntime().availableProcessors());
        if (molt.teacher.Precision.isSetting(cfg.precision())) { // products and allocator: what this machine does
            h.put("frozen_products", molt.teacher.model.Frozen.productsOn(
                    molt.teacher.Precision.resolve(cfg.precision(), 0), molt.teacher.Devices.isGpu(cfg.device())));
        }
        molt.teacher.nd.NativeMemory.Mode allocator = molt.teacher.nd.NativeMemory.mode();
        h.put("allocator", allocator == null ? "glibc" : allocator.name().toLowerCase(java.util.Locale.ROOT));
        h.set("config", cfg.toJson());
        return h;
    }

    /**
     * Refuses {@code dir} when a different config made it (the run resumes when the same one did), then writes the
     * header; returns it.
     */
    static ObjectNode checkAndWrite(Path dir, RunConfig cfg) throws IOException {
        if (check(dir, cfg)) {
            LOG.info("resuming run in {}", dir);
        }
        Path file = dir.resolve(FILE);
        ObjectNode header = header(cfg);
        AtomicFiles.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(header));
        return header;
    }

    /**
     * Refuses {@code dir} when a different config made it; true when the same config did (the run resumes), false
     * when no config made it yet. Writes nothing.
     */
    static boolean check(Path dir, RunConfig cfg) {
        Path file = dir.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            return false;
        }
        JsonNode stored = withLegacyDefaults(JsonFiles.readObject(file).path("config"));
        List<String> diff = differences(stored, cfg.toJson());
        if (!diff.isEmpty()) {
            throw new InputException(dir, "was created by a different config (differs in " + String.join(", ", diff)
                    + "); use another output_dir or delete it");
        }
        return true;
    }

    /**
     * A config resolved before keys were added, with the values its run had: F32 weights, LoRA stages that
     * never recomputed ({@code auto} does not for F32) nor trained mixers, and attention transfer of all layers
     * together.
     */
    public static JsonNode withLegacyDefaults(JsonNode stored) {
        if (!stored.isObject()) {
            return stored;
        }
        ObjectNode c = stored.deepCopy();
        if (!c.has("precision")) {
            c.put("precision", "f32");
        }
        for (JsonNode stage : c.path("stages")) {
            if (stage.path("type").asText().equals("lora_finetune") && !stage.has("recompute")) {
                ((ObjectNode) stage).put("recompute", "auto");
            }
            if (stage.path("type").asText().equals("lora_finetune") && !stage.has("train_mixers")) {
                ((ObjectNode) stage).put("train_mixers", false).put("mixer_lr", "auto"); // LoRA alone, as before
            }
            if (stage.path("type").asText().equals("attention_transfer") && !stage.has("layer_groups")) {
                ((ObjectNode) stage).put("layer_groups", 0); // every layer together, as before the key existed
            }
        }
        return c;
    }

    /** Key paths whose values differ between two resolved configs. */
    public static List<String> differences(JsonNode a, JsonNode b) {
        Map<String, String> fa = new TreeMap<>();
        Map<String, String> fb = new TreeMap<>();
        flatten("", a, fa);
        flatten("", b, fb);
        Set<String> keys = new TreeSet<>(fa.keySet());
        keys.addAll(fb.keySet());
        List<String> out = new ArrayList<>();
        for (String k : keys) {
            if (!Objects.equals(fa.get(k), fb.get(k))) {
                out.add(k);
            }
        }
        return out;
    }

    private static void flatten(String p, JsonNode n, Map<String, String> out) {
        if (n.isObject()) {
            n.fields().forEachRemaining(e -> flatten(p.isEmpty() ? e.getKey() : p + "." + e.getKey(), e.getValue(), out));
        } else if (n.isArray()) {
            out.put(p + ".length", String.valueOf(n.size()));
            for (int i = 0; i < n.size(); i++) {
                flatten(p + "[" + i + "]", n.get(i), out);
            }
        } else {
            out.put(p, n.toString());
        }
    }
}
