package molt.pipeline.config;

/** A stage that runs the training loop (molt.pipeline.train.TrainingLoop) to a token budget. */
public sealed interface TrainingSpec extends StageSpec permits TeacherPretrainSpec, StudentTrainingSpec {
    /** The settings every training stage shares. */
    TrainingSettings training();
}
