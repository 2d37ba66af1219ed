package molt.pipeline.train;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import molt.pipeline.config.RunConfig;
import molt.student.StudentModel;
import molt.teacher.LlamaConfig;
import molt.teacher.io.WeightsFile;
import molt.teacher.model.LlamaModel;

/** Builds the run's student on its teacher, continuing from the previous training stage's weights. */
final class StudentFactory {
    private StudentFactory() {
    }

    static StudentModel build(StageContext ctx, Device device, boolean withLora) {
        RunConfig cfg = ctx.config();
        LlamaModel teacher = LlamaModel.load(ctx.teacherDir(), device, cfg.frozenPrecision());
        LlamaConfig c = teacher.config();
        StudentModel s = StudentModel.create(teacher, ctx.teacherDir(), cfg.student().plan(c.numLayers()),
                cfg.student().settings());
        Path prev = ctx.previousWeights();
        Map<String, float[]> values = prev != null && Files.isRegularFile(prev) ? WeightsFile.read(prev) : Map.of();
        WeightsFile.load(s.mixerParameters(), values);
        boolean hasLora = values.keySet().stream().anyMatch(k -> k.contains(".lora_"));
        if (withLora || hasLora) {
            if (hasLora) {
                s.loadLora(cfg.lora().toConfig(), values);
            } else {
                s.enableLora(cfg.lora().toConfig(), cfg.seed() + 17);
            }
        }
        return s;
    }
}
