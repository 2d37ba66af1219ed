package molt.pipeline.config;

/**
 * A stage that trains a student (attention_transfer, lora_finetune): a variant may skip it, and its final weights
 * carry over to the next stage of the same student.
 */
public sealed interface StudentTrainingSpec extends TrainingSpec permits AttentionTransferSpec, LoraFinetuneSpec {
    @Override
    default boolean trains() {
        return true;
    }
}
