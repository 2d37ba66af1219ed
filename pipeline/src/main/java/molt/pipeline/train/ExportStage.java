package molt.pipeline.train;

import ai.djl.Device;
import java.io.IOException;
import java.nio.file.Path;
import molt.student.StudentCheckpoint;
import molt.student.StudentModel;
import molt.teacher.io.DType;

/** Writes the student checkpoint directory ({@code STAGE_DIR/student}), loadable by logits and generate. */
public final class ExportStage {
    private ExportStage() {
    }

    public static Path run(StageContext ctx, Device device) throws IOException {
        Path out = ctx.stageDir().resolve("student");
        try (StudentModel s = StudentFactory.build(ctx, device, false)) {
            s.setTraining(false, 0);
            DType dtype = ctx.stage().dtype() == null ? null : DType.valueOf(ctx.stage().dtype());
            StudentCheckpoint.export(s, out, ctx.stage().merged(), dtype, ctx.header());
        }
        return out;
    }
}
