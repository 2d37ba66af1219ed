package molt.pipeline.config;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import molt.pipeline.eval.EvaluateStage;
import molt.pipeline.eval.Evaluator;
import molt.pipeline.train.StageRunner;

/**
 * An {@code evaluate} stage: the teacher and every exported student on {@code sequences} held-out sequences, recall
 * with {@code probes} probes at each of {@code distances}, decoding at each of {@code contexts}.
 */
public record EvaluateSpec(String name, int sequences, List<Integer> distances, int probes, List<Integer> contexts)
        implements StageSpec {
    public static final String TYPE = "evaluate";

    @Override
    public boolean runsLast() {
        return true;
    }

    static EvaluateSpec bind(String name, Binder s) {
        List<Integer> distances = s.has("distances") ? s.ints("distances") : List.of(64, 128, 256);
        List<Integer> contexts = s.has("contexts") ? s.ints("contexts") : List.of(256, 1024);
        if (distances.isEmpty() || distances.stream().anyMatch(d -> d < 16)) {
            throw s.error("distances", "expected a list of distances >= 16 tokens, found " + distances);
        }
        if (contexts.isEmpty() || contexts.stream().anyMatch(c -> c < 1)) {
            throw s.error("contexts", "expected a list of context lengths >= 1, found " + contexts);
        }
        return new EvaluateSpec(name, (int) s.integer("sequences", 8, 1, 1 << 20), distances,
                (int) s.integer("probes", 4, 1, 1 << 16), contexts);
    }

    @Override
    public void toJson(ObjectNode n) {
        n.put("sequences", sequences).put("probes", probes);
        ArrayNode d = n.putArray("distances");
        distances.forEach(d::add);
        ArrayNode c = n.putArray("contexts");
        contexts.forEach(c::add);
    }

    /** The evaluator's settings for this stage (12-letter probe spans, 64 timed decoding steps). */
    public Evaluator.Settings settings() {
        return new Evaluator.Settings(sequences, distances, probes, 12, contexts, 64);
    }

    @Override
    public StageRunner runner() {
        return EvaluateStage::run;
    }
}
