package molt.pipeline.train;

import java.util.List;

/** A non-finite loss or gradient: the stage stops before updating, keeping its last good checkpoint. */
public final class TrainingDiverged extends RuntimeException {
    public TrainingDiverged(String stage, long step, double loss) {
        super("stage " + stage + ": loss is " + loss + " at step " + step
                + "; stopped, the last good checkpoint is kept (lower the learning rate and run again)");
    }

    public TrainingDiverged(String stage, long step, double loss, List<String> parameters) {
        super("stage " + stage + ": gradients are not finite at step " + step + " (loss " + loss + ") in "
                + (parameters.size() > 6 ? parameters.subList(0, 6) + " and " + (parameters.size() - 6) + " more"
                : parameters) + "; stopped before updating, the last good checkpoint is kept");
    }
}
