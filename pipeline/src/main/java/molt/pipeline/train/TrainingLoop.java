package molt.pipeline.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.data.BatchReader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.run.CheckpointStore;
import molt.pipeline.run.MetricsLog;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.WeightsFile;
import molt.teacher.nd.Scalars;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The loop every training stage shares: a token budget turned into optimizer steps, AdamW with global-norm
 * clipping, a reduce-on-plateau, cosine or constant schedule, validation that keeps the best weights, checkpoints that
 * hold everything a bit-exact resume needs (weights, optimizer moments, schedule, best, data position), NaN
 * detection, a polite stop on SIGTERM, and one metrics line per step. Subclasses supply the loss.
 */
public abstract class TrainingLoop {
    private static final Logger LOG = LogManager.getLogger(TrainingLoop.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    protected final StageContext ctx;
    protected final RunConfig.Stage stage;

    protected TrainingLoop(StageContext ctx) {
        this.ctx = ctx;
        this.stage = ctx.stage();
    }

    /** The parameters this stage trains, by name (they require gradients). */
    protected abstract Map<String, NDArray> trainable();

    /** Everything that defines the student after this stage (saved as the stage's final weights). */
    protected abstract Map<String, NDArray> studentWeights();

    /**
     * Work on a micro-batch that must happen before the gradient collector opens (a frozen teacher's forward);
     * its result is handed to {@link #loss}.
     */
    protected Object prepare(NDManager step, BatchReader.Batch batch) {
        return null;
    }

    /**
     * The training loss of one micro-batch [B][T+1] (called under the gradient collector; arrays in {@code step}),
     * with the micro-step index for seeded dropout.
     */
    protected abstract NDArray loss(NDManager step, BatchReader.Batch batch, long stepIndex, Object prepared);

    /** Validation loss of one batch (no gradients). */
    protected abstract double validationLoss(NDManager step, BatchReader.Batch batch);

    /** More validation metrics for the step's metrics line (called at each validation, without gradients). */
    protected void validationExtras(ObjectNode rec) {
    }

    /**
     * Optimizer steps this stage adds to the {@code corpusSteps} its token budget buys, each of them trained on
     * {@link #extraBatch} instead of the corpus (0: none).
     */
    protected long extraSteps(long corpusSteps) {
        return 0;
    }

    /**
     * The batch of optimizer step {@code step} (0-based) when the stage trains that step on something other than the
     * corpus (rows [B][T+1], any B and T), or null to read the corpus; non-null for exactly {@link #extraSteps} of
     * the steps. The corpus reader does not move on such a step, so a resumed run reads the same corpus rows.
     */
    protected BatchReader.Batch extraBatch(long step) {
        return null;
    }

    /** Micro-batches per optimizer step. */
    protected int accumulation() {
        return 1;
    }

    /** Extra results for result.json after training (e.g. per-layer errors). */
    protected ObjectNode results() {
        return JSON.createObjectNode();
    }

    protected abstract NDManager manager();

    /** Every parameter of the model being trained (frozen ones too), for the fraction trained. */
    protected long modelParameters() {
        return count(studentWeights());
    }

    protected static long count(Map<String, NDArray> arrays) {
        return arrays.values().stream().mapToLong(NDArray::size).sum();
    }

    /**
     * Every live NDArray of the engine, counted from the root manager (arrays DJL attaches to its system manager
     * included), logged per step to catch leaks.
     */
    protected final int liveArrays() {
        NDManager m = manager();
        while (m.getParentManager() != null && m.getParentManager() != m) {
            m = m.getParentManager();
        }
        return m.getManagedArrays().size();
    }

    /** Resident memory in MiB (Linux), or -1. */
    static long rssMib() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("\\D+", "")) / 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return -1;
    }

    private static final class Schedule {
        double lr;
        double best = Double.POSITIVE_INFINITY;
        int bad;
    }

    /** The step of a stage's latest checkpoint, or 0 (the runner truncates metrics to it before resuming). */
    public static long resumeStep(Path stageDir, int keepLast) {
        return new CheckpointStore(stageDir.resolve("checkpoints"), keepLast).latest().map(CheckpointStore.Entry::step)
                .orElse(0L);
    }

    /** Runs (or resumes) the stage to its token budget. */
    public final void run() throws IOException {
        RunConfig cfg = ctx.config();
        int batch = cfg.data().batchSize();
        long tokensPerStep = (long) batch * cfg.data().seqLen() * accumulation();
        long corpusSteps = Math.max(1, (stage.tokens() + tokensPerStep - 1) / tokensPerStep);
        long extra = extraSteps(corpusSteps);
        long totalSteps = corpusSteps + extra;
        CheckpointStore store = new CheckpointStore(ctx.stageDir().resolve("checkpoints"), cfg.checkpoint().keepLast());
        Map<String, NDArray> params = trainable();
        if (count(params) == 0) {
            // Parameter-free mixers (Liger's GLA): nothing to train; report the stage's metrics and move on.
            LOG.info("{}: the student has no parameters for this stage to train; nothing to do", ctx.id());
            WeightsFile.write(StageContext.finalWeights(ctx.stageDir()), studentWeights(), Map.of());
            ObjectNode result = results();
            result.put("steps", 0).put("tokens", 0).put("trained", false).put("trainable_parameters", 0)
                    .put("model_parameters", modelParameters());
            AtomicFiles.writeString(ctx.stageDir().resolve("result.json"),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result));
            return;
        }
        AdamW opt = new AdamW(manager(), stage.weightDecay());
        BatchReader reader = new BatchReader(ctx.data(), "train", batch, cfg.data().seed() + stage.name().hashCode());
        Schedule sched = new Schedule();
        sched.lr = stage.lr();
        long step = 0;
        long tokens = 0;
        Path bestFile = ctx.stageDir().resolve("best.safetensors");
        var latest = store.latest();
        if (latest.isPresent()) {
            Resumed at = restore(latest.get().path(), params, opt, reader, sched, tokensPerStep);
            step = at.step();
            tokens = at.tokens();
            LOG.info("{}: resuming at step {} of {}", ctx.id(), step, totalSteps);
        } else {
            LOG.info("{}: {} steps of {} tokens{} ({} trainable parameters)", ctx.id(), corpusSteps, tokensPerStep,
                    extra > 0 ? " and " + extra + " extra steps not read from the corpus" : "", count(params));
        }
        long started = System.nanoTime();
        long startStep = step;
        long startTokens = tokens;
        double lastLoss = Double.NaN;
        while (step < totalSteps) {
            if (ctx.stop().requested()) {
                checkpoint(store, step, tokens, params, opt, reader, sched, Double.NaN);
                throw new StageStopped(ctx.id(), step);
            }
            long t0 = System.nanoTime();
            java.util.List<BatchReader.Batch> batches = new java.util.ArrayList<>();
            BatchReader.Batch other = extraBatch(step);
            if (other != null) {
                batches.add(other);
            } else {
                for (int a = 0; a < accumulation(); a++) {
                    batches.add(reader.nextBatch());
                }
            }
            long stepTokens = 0;
            for (BatchReader.Batch b : batches) {
                for (long[] row : b.rows()) {
                    stepTokens += row.length - 1;
                }
            }
            double loss = accumulate(batches, step);
            double norm = opt.gradNorm(params);
            if (!Double.isFinite(loss)) {
                throw new TrainingDiverged(ctx.id(), step + 1, loss);
            }
            if (!Double.isFinite(norm)) {
                throw new TrainingDiverged(ctx.id(), step + 1, loss, opt.nonFinite(params));
            }
            double scale = stage.clipNorm() > 0 && norm > stage.clipNorm() ? stage.clipNorm() / norm : 1.0;
            if (stage.scheduler().equals("cosine")) {
                sched.lr = cosine(step, totalSteps);
            }
            opt.update(params, sched.lr, scale);
            step++;
            tokens += stepTokens;
            lastLoss = loss;
            double sec = (System.nanoTime() - t0) / 1e9;
            ObjectNode rec = MetricsLog.record().put("stage", ctx.id()).put("step", step)
                    .put("tokens", tokens).put("loss", loss).put("lr", sched.lr)
                    .put("grad_norm", norm).put("tokens_per_s", stepTokens / sec)
                    .put("ndarrays", liveArrays()).put("rss_mib", rssMib());
            boolean last = step == totalSteps;
            double val = Double.NaN;
            if (step % stage.valEvery() == 0 || last) {
                val = validate();
                rec.put("val_loss", val);
                validationExtras(rec);
                if (val < sched.best) {
                    sched.best = val;
                    sched.bad = 0;
                    WeightsFile.write(bestFile, studentWeights(), Map.of("step", String.valueOf(step)));
                } else if (stage.scheduler().equals("plateau") && ++sched.bad > stage.plateauPatience()) {
                    sched.lr *= stage.plateauFactor();
                    sched.bad = 0;
                    LOG.info("{}: validation loss has not improved; learning rate now {}", ctx.id(), sched.lr);
                }
            }
            ctx.metrics().write(rec);
            if (step % stage.logEvery() == 0 || last || step == 1) {
                double elapsed = (System.nanoTime() - started) / 1e9;
                double perStep = elapsed / (step - startStep);
                LOG.info("{} step {}/{} loss {} {} tokens/s ETA {}s", ctx.id(), step, totalSteps,
                        String.format("%.5f", loss), String.format("%.0f", (tokens - startTokens) / elapsed),
                        String.format("%.0f", perStep * (totalSteps - step)));
            }
            if (step % ctx.config().checkpoint().everySteps() == 0 || last) {
                checkpoint(store, step, tokens, params, opt, reader, sched, val);
            }
        }
        // Keep the best validated weights, as LoLCATs does.
        Path fin = StageContext.finalWeights(ctx.stageDir());
        if (Files.isRegularFile(bestFile)) {
            AtomicFiles.writeBytes(fin, Files.readAllBytes(bestFile));
        } else {
            WeightsFile.write(fin, studentWeights(), Map.of());
        }
        WeightsFile.load(studentWeights(), WeightsFile.read(fin));
        ObjectNode result = results();
        result.put("steps", step).put("tokens", tokens).put("best_val_loss", sched.best)
                .put("last_loss", lastLoss).put("trainable_parameters", count(params))
                .put("model_parameters", modelParameters());
        AtomicFiles.writeString(ctx.stageDir().resolve("result.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result));
    }

    private double cosine(long step, long total) {
        return cosine(stage.lr(), stage.warmupSteps(), stage.minLrRatio(), step, total);
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

    /** Forward and backward of one optimizer step's micro-batches (gradients accumulate); the summed loss. */
    private double accumulate(java.util.List<BatchReader.Batch> batches, long step) {
        double loss = 0;
        for (int a = 0; a < batches.size(); a++) {
            BatchReader.Batch b = batches.get(a);
            try (NDManager s = manager().newSubManager()) {
                Object prepared = prepare(s, b);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    // The mean over the step's micro-batches (one for a step of extraBatch).
                    NDArray l = loss(s, b, step * accumulation() + a, prepared).div(Scalars.of(batches.size()));
                    loss += l.getFloat();
                    gc.backward(l);
                }
            }
        }
        return loss;
    }

    private double validate() {
        BatchReader val = new BatchReader(ctx.data(), "val", ctx.config().data().batchSize(), 0);
        double sum = 0;
        for (int i = 0; i < stage.valBatches(); i++) {
            try (NDManager s = manager().newSubManager()) {
                sum += validationLoss(s, val.nextBatch());
            }
        }
        return sum / stage.valBatches();
    }

    /** Writes a checkpoint; {@code val} is its validation loss when validated at this step (the store keeps the best). */
    private void checkpoint(CheckpointStore store, long step, long tokens, Map<String, NDArray> params, AdamW opt,
                            BatchReader reader, Schedule sched, double val) throws IOException {
        Path tmp = store.begin(step);
        Map<String, NDArray> all = new LinkedHashMap<>(studentWeights());
        all.putAll(opt.state());
        WeightsFile.write(tmp.resolve("state.safetensors"), all, Map.of());
        ObjectNode s = JSON.createObjectNode();
        s.put("step", step).put("tokens", tokens).put("adam_step", opt.step()).put("lr", sched.lr).put("best", sched.best)
                .put("bad", sched.bad);
        BatchReader.Position p = reader.position();
        s.putObject("data_position").put("epoch", p.epoch()).put("shard", p.shard()).put("row", p.row());
        s.set("run", ctx.header());
        AtomicFiles.writeString(tmp.resolve("state.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(s));
        store.commit(tmp, step, val);
    }

    /** Where a checkpoint left off: optimizer steps done and tokens trained on. */
    private record Resumed(long step, long tokens) {
    }

    /**
     * Restores a checkpoint into the weights, optimizer, reader and schedule; checkpoints written before tokens were
     * counted get {@code step * tokensPerStep}.
     */
    private Resumed restore(Path dir, Map<String, NDArray> params, AdamW opt, BatchReader reader, Schedule sched,
                            long tokensPerStep) throws IOException {
        ObjectNode s = (ObjectNode) JSON.readTree(dir.resolve("state.json").toFile());
        Map<String, float[]> values = WeightsFile.read(dir.resolve("state.safetensors"));
        WeightsFile.load(studentWeights(), values);
        opt.restore(values, params, s.get("adam_step").asLong());
        sched.lr = s.get("lr").asDouble();
        sched.best = s.get("best").asDouble();
        sched.bad = s.get("bad").asInt();
        var p = s.get("data_position");
        reader.seek(new BatchReader.Position(p.get("epoch").asLong(), p.get("shard").asInt(), p.get("row").asInt()));
        long step = s.get("step").asLong();
        return new Resumed(step, s.path("tokens").asLong(step * tokensPerStep));
    }
}
