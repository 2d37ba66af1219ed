package molt.pipeline.train;

/** A stage stopped on request (SIGTERM) after writing a checkpoint; the run resumes from it. */
public final class StageStopped extends RuntimeException {
    public StageStopped(String stage, long step) {
        super("stage " + stage + " stopped at step " + step + " after writing a checkpoint; run again to resume");
    }
}
