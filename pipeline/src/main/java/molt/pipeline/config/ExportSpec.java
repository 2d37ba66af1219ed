package molt.pipeline.config;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Set;
import molt.pipeline.train.ExportStage;
import molt.pipeline.train.StageRunner;

/** An {@code export} stage: the student's checkpoint directory, LoRA merged or not, in a dtype (null: as trained). */
public record ExportSpec(String name, boolean merged, String dtype) implements StageSpec {
    public static final String TYPE = "export";

    @Override
    public boolean perStudent() {
        return true;
    }

    static ExportSpec bind(String name, Binder s) {
        return new ExportSpec(name, s.bool("merged", true), s.choice("dtype", null, Set.of("F32", "F16", "BF16")));
    }

    @Override
    public void toJson(ObjectNode n) {
        n.put("merged", merged);
        if (dtype == null) {
            n.putNull("dtype");
        } else {
            n.put("dtype", dtype);
        }
    }

    @Override
    public StageRunner runner() {
        return ExportStage::run;
    }
}
