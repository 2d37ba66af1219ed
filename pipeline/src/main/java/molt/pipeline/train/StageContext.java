package molt.pipeline.train;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.List;
import molt.data.PreparedDataset;
import molt.pipeline.config.RunConfig;
import molt.pipeline.config.StageSpec;
import molt.pipeline.eval.EvaluateStage;
import molt.pipeline.run.MetricsLog;
import molt.pipeline.run.StopSignal;

/**
 * What a stage gets from the runner: the resolved config, its own directory, the prepared data, the metrics log,
 * the stop signal, the file holding the student's trainable weights from the previous training stage (or null),
 * the header (resolved config and versions) that goes into every checkpoint, and the teacher's directory (given by
 * the config, or made by the teacher_pretrain stage), the stage's id in run.json, metrics and logs (its name, or
 * {@code variant/name} for a variant's stage; the name alone seeds the data order, so variants see the same data),
 * and the students exported so far, the run's own first (what an evaluate stage compares).
 */
public record StageContext(RunConfig config, StageSpec stage, Path runDir, Path stageDir, PreparedDataset data,
                           MetricsLog metrics, StopSignal stop, Path previousWeights, ObjectNode header, Path teacherDir,
                           String id, List<EvaluateStage.Target> students) {

    /** A stage of the run's own student: its id is its name; no student exported yet. */
    public StageContext(RunConfig config, StageSpec stage, Path runDir, Path stageDir, PreparedDataset data,
                        MetricsLog metrics, StopSignal stop, Path previousWeights, ObjectNode header, Path teacherDir) {
        this(config, stage, runDir, stageDir, data, metrics, stop, previousWeights, header, teacherDir, stage.name(),
                List.of());
    }

    /** The same stage working in {@code dir} under {@code id} (a part of it, such as one layer group). */
    public StageContext inDirectory(Path dir, String partId) {
        return new StageContext(config, stage, runDir, dir, data, metrics, stop, previousWeights, header, teacherDir,
                partId, students);
    }

    /** The stage's spec as the type its implementation runs. */
    public <S extends StageSpec> S stage(Class<S> type) {
        return type.cast(stage);
    }

    /** The file a training stage leaves its final (best) trainable weights in. */
    public static Path finalWeights(Path stageDir) {
        return stageDir.resolve("final.safetensors");
    }
}
