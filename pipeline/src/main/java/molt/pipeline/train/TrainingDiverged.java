package molt.pipeline.train;

/** A non-finite loss: the stage stops, keeping its last good checkpoint. */
public final class TrainingDiverged extends RuntimeException {
    public TrainingDiverged(String stage, long step, double loss) {
        super("stage " + stage + ": loss is " + loss + " at step " + step
                + "; stopped, the last good checkpoint is kept (lower the learning rate and run again)");
    }
}
