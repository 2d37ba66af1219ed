package molt.pipeline.config;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Set;

/**
 * The keys every training stage shares: its token budget, AdamW's learning rate and weight decay, global-norm
 * clipping, validation, the learning-rate schedule (plateau, constant, or cosine: linear warmup over
 * {@code warmup_steps}, then a cosine from lr down to {@code min_lr_ratio * lr} at the end) and logging.
 */
public record TrainingSettings(long tokens, double lr, double weightDecay, double clipNorm, int valEvery,
                               int valBatches, String scheduler, double plateauFactor, int plateauPatience,
                               int warmupSteps, double minLrRatio, int logEvery) {

    /** Binds the shared keys, with the stage type's defaults for the learning rate, weight decay and schedule. */
    static TrainingSettings bind(Binder s, double lr, double weightDecay, String scheduler) {
        long tokens = s.integer("tokens", -1, 1, Long.MAX_VALUE);
        if (tokens < 0) {
            throw s.error("tokens", "is required: the stage's token budget");
        }
        double rate = s.number("lr", lr, 0, 10, false);
        double wd = s.number("weight_decay", weightDecay, 0, 10, true);
        double clip = s.number("clip_norm", 1.0, 0, 1e6, true);
        int valEvery = (int) s.integer("val_every", 50, 1, Integer.MAX_VALUE);
        // 0: never validate (benchmarks); the final weights are then the last step's and plateau never reduces.
        int valBatches = (int) s.integer("val_batches", 4, 0, 1 << 20);
        String sched = s.choice("scheduler", scheduler, Set.of("plateau", "constant", "cosine"));
        if (valBatches == 0 && sched.equals("plateau")) {
            throw s.error("val_batches", "0 turns validation off, which scheduler: plateau needs; use constant or cosine");
        }
        int warmup = (int) s.integer("warmup_steps", 0, 0, Integer.MAX_VALUE);
        double minLrRatio = s.number("min_lr_ratio", 0.1, 0, 1, true);
        double factor = s.number("plateau_factor", 0.5, 0, 1, false);
        int patience = (int) s.integer("plateau_patience", 2, 0, 1 << 20);
        int logEvery = (int) s.integer("log_every", 10, 1, 1 << 20);
        return new TrainingSettings(tokens, rate, wd, clip, valEvery, valBatches, sched, factor, patience, warmup,
                minLrRatio, logEvery);
    }

    void toJson(ObjectNode n) {
        n.put("tokens", tokens).put("lr", lr).put("weight_decay", weightDecay).put("clip_norm", clipNorm)
                .put("val_every", valEvery).put("val_batches", valBatches).put("scheduler", scheduler)
                .put("plateau_factor", plateauFactor).put("plateau_patience", plateauPatience)
                .put("warmup_steps", warmupSteps).put("min_lr_ratio", minLrRatio).put("log_every", logEvery);
    }
}
