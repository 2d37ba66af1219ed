package molt.pipeline.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import molt.pipeline.config.RunConfig;
import molt.teacher.InputException;

/**
 * {@code softmax_layers: auto}: which layers keep softmax attention, chosen from a measurement. After a chain's first
 * attention transfer, each mixer layer is scored by its relative error on validation data: the MSE between its
 * mixer's output and the teacher's attention output, divided by the mean square of the teacher's output (raw MSEs
 * grow with the activations' scale from layer to layer; the ratio does not). The {@code softmax_budget} layers with
 * the largest scores keep softmax attention (ties: the lower layer). The choice is made once: the runner stores it in
 * run.json and reuses it on resume; the chain's later stages, its export and the report use it.
 */
public final class HybridPlan {
    private static final ObjectMapper JSON = new ObjectMapper();

    private HybridPlan() {
    }

    /** One layer's score. */
    public record Score(int layer, double relativeMse) {
    }

    /** The chosen layers (ascending), every layer's score (in layer order) and the stage that measured them. */
    public record Choice(List<Integer> softmaxLayers, List<Score> scores, String measuredBy, double budget) {
        ObjectNode toJson() {
            ObjectNode n = JSON.createObjectNode();
            ArrayNode chosen = n.putArray("softmax_layers");
            softmaxLayers.forEach(chosen::add);
            n.put("softmax_budget", budget).put("measured_by", measuredBy)
                    .put("score", "relative attention-transfer MSE on validation data");
            ArrayNode sc = n.putArray("scores");
            scores.forEach(s -> sc.addObject().put("layer", s.layer()).put("relative_mse", s.relativeMse()));
            return n;
        }

        static Choice fromJson(JsonNode n) {
            List<Integer> chosen = new ArrayList<>();
            n.path("softmax_layers").forEach(l -> chosen.add(l.asInt()));
            List<Score> scores = new ArrayList<>();
            n.path("scores").forEach(s -> scores.add(new Score(s.path("layer").asInt(),
                    s.path("relative_mse").asDouble())));
            return new Choice(List.copyOf(chosen), List.copyOf(scores), n.path("measured_by").asText(),
                    n.path("softmax_budget").asDouble());
        }
    }

    /**
     * Chooses from an attention-transfer stage's result ({@code result}, read from {@code file}, made by
     * {@code stageId}): the student's budget of layers with the largest relative MSE.
     */
    public static Choice choose(RunConfig.Student student, JsonNode result, String stageId, Path file) {
        List<Score> scores = new ArrayList<>();
        for (JsonNode l : result.path("per_layer_mse")) {
            if (!l.path("relative_mse").isNumber()) {
                throw new InputException(file, "per_layer_mse has no relative_mse for layer " + l.path("layer")
                        + ": softmax_layers: auto needs attention transfer's per-layer errors");
            }
            scores.add(new Score(l.path("layer").asInt(), l.path("relative_mse").asDouble()));
        }
        if (scores.isEmpty()) {
            throw new InputException(file, "holds no per-layer errors (per_layer_mse): softmax_layers: auto needs "
                    + "attention transfer with validation (val_batches > 0)");
        }
        int count = student.softmaxCount(scores.size());
        if (count >= scores.size()) {
            throw new InputException(student.origin() + ": softmax_budget " + student.softmaxBudget() + " keeps "
                    + count + " of the " + scores.size() + " mixer layers: nothing would be linearized");
        }
        List<Score> ranked = new ArrayList<>(scores);
        ranked.sort(Comparator.comparingDouble(Score::relativeMse).reversed().thenComparingInt(Score::layer));
        List<Integer> chosen = new ArrayList<>(student.softmaxLayers());
        ranked.subList(0, count).forEach(s -> chosen.add(s.layer()));
        chosen.sort(null);
        return new Choice(List.copyOf(chosen), List.copyOf(scores), stageId, student.softmaxBudget());
    }
}
