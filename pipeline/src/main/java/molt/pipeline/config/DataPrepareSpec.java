package molt.pipeline.config;

import com.fasterxml.jackson.databind.node.ObjectNode;
import molt.pipeline.train.DataPrepareStage;
import molt.pipeline.train.StageRunner;

/**
 * A {@code data_prepare} stage: records the prepared data's counts and, with {@code top_k} > 0, stores the teacher's
 * top-k targets beside the shards (0: no teacher targets).
 */
public record DataPrepareSpec(String name, int topK) implements StageSpec {
    public static final String TYPE = "data_prepare";

    static DataPrepareSpec bind(String name, Binder s) {
        return new DataPrepareSpec(name, (int) s.integer("top_k", 0, 0, 1 << 20));
    }

    @Override
    public void toJson(ObjectNode n) {
        n.put("top_k", topK);
    }

    @Override
    public StageRunner runner() {
        return DataPrepareStage::run;
    }
}
