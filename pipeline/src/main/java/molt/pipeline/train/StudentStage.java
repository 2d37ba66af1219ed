package molt.pipeline.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.pipeline.config.StudentTrainingSpec;
import molt.student.StudentModel;

/**
 * A training stage of the student (attention transfer or LoRA fine-tuning): it owns the student built from the
 * stage's context and a manager for its long-lived arrays, and saves the mixers' and adapters' weights.
 */
abstract class StudentStage<S extends StudentTrainingSpec, P> extends TrainingLoop<S, P> implements AutoCloseable {
    protected final StudentModel student;
    private final NDManager manager;
    private final boolean ownsStudent;

    StudentStage(StageContext ctx, Class<S> type, Device device, boolean withLora) {
        this(ctx, type, StudentFactory.build(ctx, device, withLora), true);
    }

    /** A stage over {@code student}, which it closes only when it {@code owns} it. */
    StudentStage(StageContext ctx, Class<S> type, StudentModel student, boolean owns) {
        super(ctx, type);
        this.student = student;
        this.manager = NDManager.newBaseManager(student.device());
        this.ownsStudent = owns;
    }

    @Override
    protected NDManager manager() {
        return manager;
    }

    @Override
    protected long modelParameters() {
        return molt.teacher.LlamaWeights.parameterCount(student.config()) + count(studentWeights());
    }

    @Override
    protected Map<String, NDArray> studentWeights() {
        Map<String, NDArray> m = new LinkedHashMap<>(student.mixerParameters());
        m.putAll(student.loraParameters());
        return m;
    }

    public StudentModel student() {
        return student;
    }

    @Override
    public void close() {
        manager.close();
        if (ownsStudent) {
            student.close();
        }
    }
}
