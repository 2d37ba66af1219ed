package molt.pipeline.train;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import molt.pipeline.config.DataPrepareSpec;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.model.LlamaModel;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The data_prepare stage: the run's data is prepared before any stage runs (every stage needs it); this stage
 * records the counts and, with {@code top_k} > 0, stores the teacher's top-k targets beside the shards.
 */
public final class DataPrepareStage {
    private static final Logger LOG = LogManager.getLogger(DataPrepareStage.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private DataPrepareStage() {
    }

    public static void run(StageContext ctx, Device device) throws IOException {
        DataPrepareSpec spec = ctx.stage(DataPrepareSpec.class);
        ObjectNode r = JSON.createObjectNode();
        r.put("dataset", ctx.data().dir().toString());
        r.put("train_sequences", ctx.data().sequences("train"));
        r.put("val_sequences", ctx.data().sequences("val"));
        if (spec.topK() > 0) {
            if (ctx.config().pretrainStage() != null) {
                throw new InputException(spec.name() + ": top_k needs the teacher, which teacher_pretrain has not made yet");
            }
            try (LlamaModel t = LlamaModel.load(ctx.teacherDir(), device, ctx.config().frozenPrecision())) {
                r.put("topk_sequences", TopKTargets.build(t, ctx.data(), spec.topK(),
                        ctx.config().data().batchSize(), true));
            }
            r.put("top_k", spec.topK());
        }
        AtomicFiles.writeString(ctx.stageDir().resolve("result.json"), JSON.writerWithDefaultPrettyPrinter()
                .writeValueAsString(r));
        LOG.info("{}: {} train / {} val sequences in {}", spec.name(), ctx.data().sequences("train"),
                ctx.data().sequences("val"), ctx.data().dir());
    }
}
