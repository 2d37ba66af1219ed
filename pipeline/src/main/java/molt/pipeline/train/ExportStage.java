package molt.pipeline.train;

import ai.djl.Device;
import java.io.IOException;
import java.nio.file.Path;
import molt.pipeline.config.ExportSpec;
import molt.student.StudentCheckpoint;
import molt.student.StudentModel;
import molt.teacher.io.DType;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/** Writes the student checkpoint directory ({@code STAGE_DIR/student}), loadable by logits and generate. */
public final class ExportStage {
    private static final Logger LOG = LogManager.getLogger(ExportStage.class);

    private ExportStage() {
    }

    /** Where an export stage leaves its student. */
    public static Path studentDir(Path stageDir) {
        return stageDir.resolve("student");
    }

    public static Path run(StageContext ctx, Device device) throws IOException {
        ExportSpec spec = ctx.stage(ExportSpec.class);
        Path out = studentDir(ctx.stageDir());
        try (StudentModel s = StudentFactory.build(ctx, device, false)) {
            s.setTraining(false, 0);
            DType dtype = spec.dtype() == null ? null : DType.valueOf(spec.dtype());
            StudentCheckpoint.export(s, out, spec.merged(), dtype, ctx.header());
        }
        LOG.info("exported student to {}", out);
        return out;
    }
}
