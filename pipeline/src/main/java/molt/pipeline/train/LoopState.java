package molt.pipeline.train;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.data.BatchReader;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.WeightsFile;

/**
 * What the training loop carries from one optimizer step to the next and what a checkpoint holds for a bit-exact
 * resume: the trained parameters' optimizer, the corpus reader's position, the learning-rate schedule, the steps
 * done and the tokens trained on.
 */
final class LoopState {
    private static final ObjectMapper JSON = new ObjectMapper();

    final Map<String, NDArray> params;
    final AdamW opt;
    final BatchReader reader;
    final LearningRate rate;
    long step;
    long tokens;
    double lastLoss = Double.NaN;

    LoopState(Map<String, NDArray> params, AdamW opt, BatchReader reader, LearningRate rate) {
        this.params = params;
        this.opt = opt;
        this.reader = reader;
        this.rate = rate;
    }

    /** Writes the state, with {@code weights} (the student's) and the run's {@code header}, into {@code dir}. */
    void save(Path dir, Map<String, NDArray> weights, ObjectNode header) throws IOException {
        Map<String, NDArray> all = new LinkedHashMap<>(weights);
        all.putAll(opt.state());
        WeightsFile.write(dir.resolve("state.safetensors"), all, Map.of());
        ObjectNode s = JSON.createObjectNode();
        s.put("step", step).put("tokens", tokens).put("adam_step", opt.step());
        rate.save(s);
        BatchReader.Position p = reader.position();
        s.putObject("data_position").put("epoch", p.epoch()).put("shard", p.shard()).put("row", p.row());
        s.set("run", header);
        AtomicFiles.writeString(dir.resolve("state.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(s));
    }

    /**
     * Restores a checkpoint into {@code weights}, the optimizer, reader and schedule; checkpoints written before
     * tokens were counted get {@code step * tokensPerStep}.
     */
    void restore(Path dir, Map<String, NDArray> weights, long tokensPerStep) throws IOException {
        ObjectNode s = (ObjectNode) JSON.readTree(dir.resolve("state.json").toFile());
        Map<String, float[]> values = WeightsFile.read(dir.resolve("state.safetensors"));
        WeightsFile.load(weights, values);
        opt.restore(values, params, s.get("adam_step").asLong());
        rate.restore(s);
        var p = s.get("data_position");
        reader.seek(new BatchReader.Position(p.get("epoch").asLong(), p.get("shard").asInt(), p.get("row").asInt()));
        step = s.get("step").asLong();
        tokens = s.path("tokens").asLong(step * tokensPerStep);
    }
}
