package molt.pipeline.train;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import molt.data.BatchReader;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.JsonFiles;
import molt.teacher.io.SafetensorsFile;
import molt.teacher.io.SafetensorsWriter;
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
    /** The parameter groups that train independently, and each one's schedule (one per lane, same order). */
    final List<TrainingLoop.Lane> lanes;
    final LearningRate[] rates;
    /** Named lanes ({@link TrainingLoop#trainsInLanes}) rather than the stage's one implicit lane. */
    final boolean inLanes;
    long step;
    long tokens;
    double lastLoss = Double.NaN;
    /** The last step's loss per lane (NaN before a step of this process). */
    double[] lastLosses;

    LoopState(List<TrainingLoop.Lane> lanes, boolean inLanes, AdamW opt, BatchReader reader, LearningRate[] rates) {
        this.inLanes = inLanes;
        Map<String, NDArray> all = new LinkedHashMap<>();
        lanes.forEach(l -> all.putAll(l.params()));
        this.params = all;
        this.lanes = lanes;
        this.opt = opt;
        this.reader = reader;
        this.rates = rates;
        this.lastLosses = new double[rates.length];
        java.util.Arrays.fill(lastLosses, Double.NaN);
    }

    /** Writes the schedules: the implicit lane's at the top level of state.json (as always), named ones by name. */
    private void saveRates(ObjectNode s) {
        if (!inLanes) {
            rates[0].save(s);
            return;
        }
        ObjectNode byLane = s.putObject("lanes");
        for (int i = 0; i < rates.length; i++) {
            rates[i].save(byLane.putObject(lanes.get(i).name()));
        }
    }

    private void restoreRates(Path stateFile, Path dir, ObjectNode s) {
        if (!inLanes) {
            rates[0].restore(s);
            return;
        }
        for (int i = 0; i < rates.length; i++) {
            var lane = s.path("lanes").path(lanes.get(i).name());
            if (!lane.isObject()) {
                throw new InputException(stateFile, "damaged checkpoint state: no schedule for '" + lanes.get(i).name()
                        + "' under 'lanes'; delete " + dir + " to resume from the checkpoint before it");
            }
            rates[i].restore(lane);
        }
    }

    /** Writes the state, with {@code weights} (the student's) and the run's {@code header}, into {@code dir}. */
    void save(Path dir, Map<String, NDArray> weights, ObjectNode header) throws IOException {
        Map<String, NDArray> all = new LinkedHashMap<>(weights);
        all.putAll(opt.state());
        WeightsFile.write(dir.resolve("state.safetensors"), all, Map.of());
        ObjectNode s = JSON.createObjectNode();
        s.put("step", step).put("tokens", tokens).put("adam_step", opt.step());
        saveRates(s);
        BatchReader.Position p = reader.position();
        s.putObject("data_position").put("epoch", p.epoch()).put("shard", p.shard()).put("row", p.row());
        s.set("run", header);
        s.put(WEIGHTS_SHA256, weightsDigest(dir));
        AtomicFiles.writeString(dir.resolve("state.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(s));
    }

    /** The key in state.json under which a checkpoint records the data digest of its state.safetensors. */
    static final String WEIGHTS_SHA256 = "weights_sha256";

    /** The digest recorded in a checkpoint's weights (checked against their data when the file is opened). */
    private static String weightsDigest(Path dir) {
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("state.safetensors"))) {
            return f.metadata().get(SafetensorsWriter.DATA_SHA256);
        }
    }

    /**
     * The checkpoint's weights are the ones its state was saved with (not a copy from another checkpoint).
     * Checkpoints written before molt recorded the digest resume unchecked.
     */
    private static void checkWeights(Path dir, ObjectNode s) {
        String recorded = s.path(WEIGHTS_SHA256).asText(null);
        if (recorded == null) {
            return;
        }
        String found = weightsDigest(dir);
        if (!recorded.equals(found)) {
            throw new InputException(dir.resolve("state.safetensors"), "does not belong to this checkpoint (state.json "
                    + "records weights " + recorded + ", the file holds " + found + "); delete " + dir
                    + " to resume from the checkpoint before it");
        }
    }

    /**
     * Restores a checkpoint into {@code weights}, the optimizer, reader and schedule; checkpoints written before
     * tokens were counted get {@code step * tokensPerStep}.
     */
    void restore(Path dir, Map<String, NDArray> weights, long tokensPerStep) throws IOException {
        Path stateFile = dir.resolve("state.json");
        ObjectNode s = JsonFiles.readObject(stateFile);
        for (String key : new String[] {"step", "adam_step"}) {
            if (!s.path(key).isIntegralNumber() || !s.path("data_position").isObject()) {
                throw new InputException(stateFile, "damaged checkpoint state: no integer '" + key
                        + "' or no data_position; delete " + dir + " to resume from the checkpoint before it");
            }
        }
        checkWeights(dir, s);
        Map<String, float[]> values = WeightsFile.read(dir.resolve("state.safetensors"));
        WeightsFile.load(weights, values);
        opt.restore(values, params, s.get("adam_step").asLong());
        restoreRates(stateFile, dir, s);
        var p = s.get("data_position");
        reader.seek(new BatchReader.Position(p.get("epoch").asLong(), p.get("shard").asInt(), p.get("row").asInt()));
        step = s.get("step").asLong();
        tokens = s.path("tokens").asLong(step * tokensPerStep);
    }
}
