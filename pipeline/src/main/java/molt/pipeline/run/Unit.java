package molt.pipeline.run;

import java.io.Serializable;
import java.util.List;

/**
 * One piece of a run that can execute apart from the rest, in this process or as a distributed task
 * ({@link Dispatcher}): a whole stage of one student chain, one layer group of a grouped attention transfer, or the
 * teacher's top-k targets for one shard of the run's data. {@code softmaxLayers}, when not null, is the choice
 * {@code softmax_layers: auto} made for the unit's chain (made once by the run, so every unit of the chain sees it).
 */
public record Unit(String jobId, Kind kind, int index, List<Integer> softmaxLayers) implements Serializable {
    /** What a unit does. */
    public enum Kind {
        /** the teacher's top-k targets for shard {@code index} (train shards, then val) of a data_prepare stage */
        TOPK_SHARD,
        /** layer group {@code index} of an attention_transfer stage with {@code layer_groups} */
        LAYER_GROUP,
        /** the whole stage */
        STAGE
    }

    public Unit {
        softmaxLayers = softmaxLayers == null ? null : List.copyOf(softmaxLayers);
    }

    /** A name for logs and part files: the job's id, plus the shard or group. */
    public String name() {
        return switch (kind) {
            case STAGE -> jobId;
            case TOPK_SHARD -> jobId + "/shard-" + index;
            case LAYER_GROUP -> jobId + "/group-" + index;
        };
    }
}
