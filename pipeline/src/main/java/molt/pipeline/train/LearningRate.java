package molt.pipeline.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import molt.pipeline.config.TrainingSettings;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * A training stage's learning-rate schedule and its state: {@code constant}; {@code plateau}, which multiplies the
 * rate by plateau_factor once the validation loss has not improved for more than plateau_patience validations; or
 * {@code cosine}, a linear warmup over warmup_steps, then a half cosine down to min_lr_ratio x lr at the last step.
 * It also tracks the best validation loss (the loop keeps that step's weights). Its state goes into checkpoints
 * ({@link #save}, {@link #restore}) so that a resumed run continues with the same rates.
 */
final class LearningRate {
    private static final Logger LOG = LogManager.getLogger(LearningRate.class);

    private final TrainingSettings settings;
    private final long totalSteps;
    private final String id;
    private double lr;
    private double best = Double.POSITIVE_INFINITY;
    private int bad;

    /** The schedule of a stage ({@code id}, for logs) of {@code totalSteps} optimizer steps. */
    LearningRate(TrainingSettings settings, long totalSteps, String id) {
        this.settings = settings;
        this.totalSteps = totalSteps;
        this.id = id;
        this.lr = settings.lr();
    }

    /** The rate for optimizer step {@code step} (0-based). */
    double forStep(long step) {
        if (settings.scheduler().equals("cosine")) {
            lr = cosine(settings.lr(), settings.warmupSteps(), settings.minLrRatio(), step, totalSteps);
        }
        return lr;
    }

    /** The rate of the latest step (or the restored one). */
    double current() {
        return lr;
    }

    /** The lowest validation loss so far (infinite before the first validation). */
    double best() {
        return best;
    }

    /**
     * Records a validation loss: true when it is the best so far; otherwise, under {@code plateau}, one more
     * validation without improvement, which lowers the rate once there are more than plateau_patience of them.
     */
    boolean validated(double loss) {
        if (loss < best) {
            best = loss;
            bad = 0;
            return true;
        }
        if (settings.scheduler().equals("plateau") && ++bad > settings.plateauPatience()) {
            lr *= settings.plateauFactor();
            bad = 0;
            LOG.info("{}: validation loss has not improved; learning rate now {}", id, lr);
        }
        return false;
    }

    /** Writes the state into a checkpoint's state.json. */
    void save(ObjectNode state) {
        state.put("lr", lr).put("best", best).put("bad", bad);
    }

    /** Restores the state from a checkpoint's state.json. */
    void restore(JsonNode state) {
        lr = state.get("lr").asDouble();
        best = state.get("best").asDouble();
        bad = state.get("bad").asInt();
    }

    /**
     * The cosine schedule's rate for optimizer step {@code step} (0-based) of {@code total}: linear warmup to
     * {@code lr} over {@code warmup} steps, then a half cosine from {@code lr} to {@code minRatio * lr} at the last
     * step.
     */
    static double cosine(double lr, int warmup, double minRatio, long step, long total) {
        if (step < warmup) {
            return lr * (step + 1) / warmup;
        }
        double progress = (double) (step - warmup) / Math.max(1, total - warmup - 1);
        double floor = lr * minRatio;
        return floor + (lr - floor) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
    }
}
