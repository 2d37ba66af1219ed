package molt.pipeline.train;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import molt.pipeline.config.AttentionTransferSpec;
import molt.student.StudentModel;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.JsonFiles;
import molt.teacher.io.WeightsFile;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Attention transfer in layer groups ({@code layer_groups: N}). The student's mixer layers are split into N
 * consecutive groups whose sizes differ by at most one, and the groups train one after another. Each group works in
 * a directory of its own under the stage's, {@code groups/layers-A-B}: checkpoints, each layer's best weights,
 * {@code final.safetensors} and {@code result.json}; its metrics lines carry the id {@code <stage>/layers-A-B}.
 * Every layer trains as a lane of its own ({@link AttentionTransferStage}'s per-layer mode): its own schedule,
 * clipping, validation and best weights, on the same batches, with the teacher run only up to the group's last layer.
 *
 * <p>A group whose result.json and final weights exist (the weights' checksum verified) is skipped, so a resumed or
 * repeated stage redoes only what is missing. A merge then writes the stage's {@code final.safetensors} (every mixer
 * parameter, in the student's order) and {@code result.json} (per-layer results in layer order). No computation
 * crosses layers, so every file the merge writes is byte-identical for every N on the same device and thread count.
 */
public final class LayerGroupTransfer {
    private static final Logger LOG = LogManager.getLogger(LayerGroupTransfer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The stage directory's subdirectory holding the groups. */
    static final String GROUPS = "groups";

    private LayerGroupTransfer() {
    }

    /** {@code layers} in {@code groups} consecutive runs, the first {@code layers % groups} one longer. */
    static List<int[]> split(int[] layers, int groups) {
        if (groups < 1 || groups > layers.length) {
            throw new IllegalArgumentException("expected 1 to " + layers.length + " groups, found " + groups);
        }
        List<int[]> out = new ArrayList<>();
        int from = 0;
        for (int g = 0; g < groups; g++) {
            int size = layers.length / groups + (g < layers.length % groups ? 1 : 0);
            out.add(java.util.Arrays.copyOfRange(layers, from, from + size));
            from += size;
        }
        return out;
    }

    /** A group's directory name: {@code layers-A-B}, its first and last layer. */
    static String name(int[] group) {
        return "layers-" + group[0] + "-" + group[group.length - 1];
    }

    /** A group's metrics and log id: the stage's id, a slash, the group's directory name. */
    static String partId(String stageId, Path groupDir) {
        return stageId + "/" + groupDir.getFileName();
    }

    /** The stage a metrics id belongs to: the id itself, or, for a layer group's ({@link #partId}), its stage's. */
    public static String stageOf(String metricsId) {
        return metricsId.replaceFirst("/layers-\\d+-\\d+$", "");
    }

    /** The group directories a stage has started, in name order (none for a stage without groups). */
    static List<Path> startedGroups(Path stageDir) throws IOException {
        Path dir = stageDir.resolve(GROUPS);
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(Files::isDirectory).sorted().toList();
        }
    }

    /** Trains every group not finished yet, then merges them into the stage's final weights and result. */
    static void run(StageContext ctx, Device device) throws IOException {
        try (StudentModel student = StudentFactory.build(ctx, device, false)) {
            List<int[]> parts = parts(ctx, student);
            if (parts == null) {
                return;
            }
            for (int i = 0; i < parts.size(); i++) {
                train(ctx, student, parts, i);
            }
            merge(ctx, student, parts);
        }
    }

    /**
     * Trains group {@code index} of the stage alone, unless it is finished (a distributed run trains each group as a
     * task of its own, then runs the stage, which finds every group finished and merges them). Its files are the
     * same bytes as when {@link #run} trains it, since no computation crosses layers.
     */
    public static void runGroup(StageContext ctx, Device device, int index) throws IOException {
        try (StudentModel student = StudentFactory.build(ctx, device, false)) {
            List<int[]> parts = parts(ctx, student);
            if (parts != null) {
                train(ctx, student, parts, index);
            }
        }
    }

    /** The stage's groups of mixer layers, or null (final weights written empty) when every layer keeps softmax. */
    private static List<int[]> parts(StageContext ctx, StudentModel student) throws IOException {
        int groups = ctx.stage(AttentionTransferSpec.class).layerGroups();
        int[] layers = student.mixerLayers();
        if (layers.length == 0) {
            LOG.info("{}: every layer keeps softmax attention: nothing to transfer", ctx.id());
            WeightsFile.write(StageContext.finalWeights(ctx.stageDir()), Map.of(), Map.of());
            return null;
        }
        if (groups > layers.length) {
            throw new InputException("stage '" + ctx.stage().name() + "': layer_groups " + groups + " exceeds the "
                    + layers.length + " mixer layers; use at most " + layers.length);
        }
        return split(layers, groups);
    }

    /** Trains group {@code index} of {@code parts} unless it is finished. */
    private static void train(StageContext ctx, StudentModel student, List<int[]> parts, int index)
            throws IOException {
        int[] g = parts.get(index);
        Path dir = ctx.stageDir().resolve(GROUPS).resolve(name(g));
        if (finished(dir)) {
            LOG.info("{}: layers {}-{} already trained ({})", ctx.id(), g[0], g[g.length - 1], dir);
            return;
        }
        Files.createDirectories(dir);
        LOG.info("{}: training layers {}-{} ({} of {} groups)", ctx.id(), g[0], g[g.length - 1], index + 1,
                parts.size());
        try (AttentionTransferStage s = new AttentionTransferStage(ctx.inDirectory(dir, partId(ctx.id(), dir)),
                student, g)) {
            s.run();
        }
    }

    /**
     * True when a group has its result and final weights, the weights matching their recorded checksum; a group
     * whose final weights are damaged is redone from its checkpoints (its files are removed first).
     */
    static boolean finished(Path dir) throws IOException {
        Path fin = StageContext.finalWeights(dir);
        Path result = dir.resolve("result.json");
        if (!Files.isRegularFile(fin) || !Files.isRegularFile(result)) {
            return false;
        }
        try {
            WeightsFile.read(fin);
            JsonFiles.readObject(result);
            return true;
        } catch (InputException e) {
            LOG.warn("{}: {}; training the group again from its checkpoints", dir, e.getMessage());
            Files.deleteIfExists(result);
            Files.deleteIfExists(fin);
            return false;
        }
    }

    /**
     * The stage's final weights (each group's final weights set into the student, then every mixer parameter
     * written in the student's order) and its result.json, which lists each layer's results in layer order.
     */
    private static void merge(StageContext ctx, StudentModel student, List<int[]> parts) throws IOException {
        ObjectNode merged = JSON.createObjectNode();
        ArrayNode groups = merged.putArray("layer_groups");
        ArrayNode perLayer = JSON.createArrayNode();
        ArrayNode lanes = JSON.createArrayNode();
        long trainable = 0;
        JsonNode first = null;
        for (int[] g : parts) {
            Path dir = ctx.stageDir().resolve(GROUPS).resolve(name(g));
            WeightsFile.load(student.mixerParameters(), WeightsFile.read(StageContext.finalWeights(dir)));
            ObjectNode r = JsonFiles.readObject(dir.resolve("result.json"));
            first = first == null ? r : first;
            ArrayNode ls = groups.addObject().put("group", name(g)).putArray("layers");
            for (int layer : g) {
                ls.add(layer);
            }
            r.path("per_layer_mse").forEach(perLayer::add);
            r.path("lanes").forEach(lanes::add);
            trainable += r.path("trainable_parameters").asLong();
        }
        WeightsFile.write(StageContext.finalWeights(ctx.stageDir()), student.mixerParameters(), Map.of());
        merged.put("steps", first.path("steps").asLong()).put("tokens", first.path("tokens").asLong());
        merged.set("best_val_loss", mean(lanes, "best_val_loss"));
        merged.set("last_loss", mean(lanes, "last_loss"));
        long model = molt.teacher.LlamaWeights.parameterCount(student.config())
                + TrainingLoop.count(student.mixerParameters());
        merged.put("trainable_parameters", trainable).put("model_parameters", model);
        if (!perLayer.isEmpty()) {
            merged.set("per_layer_mse", perLayer);
        }
        merged.set("lanes", lanes);
        AtomicFiles.writeString(ctx.stageDir().resolve("result.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(merged));
        LOG.info("{}: merged {} layer groups into {}", ctx.id(), parts.size(),
                StageContext.finalWeights(ctx.stageDir()));
    }

    /** The mean of a numeric field over the lanes, in layer order, or null when any lane lacks it. */
    private static JsonNode mean(ArrayNode lanes, String field) {
        double sum = 0;
        for (JsonNode l : lanes) {
            if (!l.path(field).isNumber()) {
                return JSON.nullNode();
            }
            sum += l.path(field).asDouble();
        }
        return lanes.isEmpty() ? JSON.nullNode() : JSON.getNodeFactory().numberNode(sum / lanes.size());
    }
}
