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
import java.util.Map;
import molt.data.BatchReader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.config.TrainingSettings;
import molt.pipeline.config.TrainingSpec;
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
public abstract class TrainingLoop<S extends TrainingSpec, P> {
    private static final Logger LOG = LogManager.getLogger(TrainingLoop.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    protected final StageContext ctx;
    protected final S stage;
    /** The stage's training settings (budget, optimizer, validation, schedule, logging). */
    protected final TrainingSettings training;

    /** A loop for the stage of {@code ctx}, whose spec is a {@code type}. */
    protected TrainingLoop(StageContext ctx, Class<S> type) {
        this.ctx = ctx;
        this.stage = ctx.stage(type);
        this.training = stage.training();
    }

    /** The parameters this stage trains, by name (they require gradients). */
    protected abstract Map<String, NDArray> trainable();

    /**
     * A group of trained parameters with its own learning-rate schedule, gradient clipping, validation loss and best
     * weights: several lanes in one loop train exactly as each would alone (the optimizer's step count, the data
     * and the batches are shared; nothing computed from one lane reaches another).
     */
    public record Lane(String name, Map<String, NDArray> params) {
    }

    /** The stage's lanes, in the order of {@link #lossAndBackward}'s losses: by default one, of everything trained. */
    protected java.util.List<Lane> lanes() {
        return java.util.List.of(new Lane("all", trainable()));
    }

    /**
     * True when the stage trains named {@link #lanes} (even a single one): each then keeps its schedule under its name
     * in checkpoints, its best weights in a file of its own, its results in result.json's {@code lanes}, and its
     * loss, norm and rate in each metrics line's {@code lanes}.
     */
    protected boolean trainsInLanes() {
        return false;
    }

    /** Everything that defines the student after this stage (saved as the stage's final weights). */
    protected abstract Map<String, NDArray> studentWeights();

    /**
     * Work on a micro-batch that must happen before the gradient collector opens (a frozen teacher's forward);
     * its result is handed to {@link #loss}.
     */
    protected P prepare(NDManager step, BatchReader.Batch batch) {
        return null;
    }

    /**
     * The training loss of one micro-batch [B][T+1] (called under the gradient collector; arrays in {@code step}),
     * with the micro-step index for seeded dropout. A stage that {@link #ownsBackward} always need not have one.
     */
    protected NDArray loss(NDManager step, BatchReader.Batch batch, long stepIndex, P prepared) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " computes its loss in lossAndBackward");
    }

    /** Validation loss of one batch (no gradients). */
    protected abstract double validationLoss(NDManager step, BatchReader.Batch batch);

    /** Validation loss of one batch per {@link #lanes lane} (no gradients); by default the one lane's. */
    protected double[] validationLosses(NDManager step, BatchReader.Batch batch) {
        return new double[] {validationLoss(step, batch)};
    }

    /**
     * True when the stage computes a micro-batch's loss and gradients itself ({@link #lossAndBackward}), to free
     * what backward has used before the whole loss is known; otherwise one backward runs on {@link #loss}.
     */
    protected boolean ownsBackward() {
        return false;
    }

    /**
     * Loss and gradients of one micro-batch, each lane's loss divided by {@code microBatches}, with the stage's own
     * collector and backward passes; returns those losses, one per {@link #lanes lane}. Only stages whose
     * {@link #ownsBackward} is true implement it.
     */
    protected double[] lossAndBackward(NDManager step, BatchReader.Batch batch, long stepIndex, P prepared,
                                       int microBatches) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " runs one backward on its loss");
    }

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

    /** The step of a stage's latest checkpoint, or 0 (the runner truncates metrics to it before resuming). */
    public static long resumeStep(Path stageDir, int keepLast) {
        return new CheckpointStore(stageDir.resolve("checkpoints"), keepLast).latest().map(CheckpointStore.Entry::step)
                .orElse(0L);
    }

    /**
     * Where each part of a stage ({@code id}) resumes: the stage's own latest checkpoint step, and that of each layer
     * group it has started ({@link LayerGroupTransfer}), by metrics id.
     */
    public static Map<String, Long> resumeSteps(Path stageDir, String id, int keepLast) throws IOException {
        Map<String, Long> out = new java.util.LinkedHashMap<>();
        out.put(id, resumeStep(stageDir, keepLast));
        for (Path group : LayerGroupTransfer.startedGroups(stageDir)) {
            out.put(LayerGroupTransfer.partId(id, group), resumeStep(group, keepLast));
        }
        return out;
    }

    /** The steps a token budget buys: those that read the corpus (each {@code tokensPerStep}), plus the extra ones. */
    private record Budget(long tokensPerStep, long corpusSteps, long extraSteps) {
        long total() {
            return corpusSteps + extraSteps;
        }
    }

    /** Where and when this process started (or resumed) the stage, for the logged speed and ETA. */
    private record Start(long nanos, long step, long tokens) {
    }

    /** Runs (or resumes) the stage to its token budget. */
    public final void run() throws IOException {
        RunConfig cfg = ctx.config();
        long tokensPerStep = (long) cfg.data().batchSize() * cfg.data().seqLen() * accumulation();
        long corpusSteps = Math.max(1, (training.tokens() + tokensPerStep - 1) / tokensPerStep);
        Budget budget = new Budget(tokensPerStep, corpusSteps, extraSteps(corpusSteps));
        CheckpointStore store = new CheckpointStore(ctx.stageDir().resolve("checkpoints"), cfg.checkpoint().keepLast());
        java.util.List<Lane> lanes = lanes();
        if (lanes.stream().mapToLong(l -> count(l.params())).sum() == 0) {
            nothingToTrain();
            return;
        }
        LoopState st = resume(store, lanes, budget);
        Start start = new Start(System.nanoTime(), st.step, st.tokens);
        while (st.step < budget.total()) {
            if (ctx.stop().requested()) {
                checkpoint(store, st, Double.NaN);
                throw new StageStopped(ctx.id(), st.step);
            }
            java.nio.file.Path trace = StepProfiler.begin(ctx.id(), st.step + 1);
            double val;
            try {
                val = step(st, budget.total());
            } finally {
                StepProfiler.end(trace);
            }
            logProgress(st, budget.total(), start);
            if (st.step % cfg.checkpoint().everySteps() == 0 || st.step == budget.total()) {
                checkpoint(store, st, val);
            }
        }
        finish(st);
    }

    /** Parameter-free mixers (Liger's GLA): nothing to train; reports the stage's metrics and moves on. */
    private void nothingToTrain() throws IOException {
        LOG.info("{}: the student has no parameters for this stage to train; nothing to do", ctx.id());
        WeightsFile.write(StageContext.finalWeights(ctx.stageDir()), studentWeights(), Map.of());
        ObjectNode result = results();
        result.put("steps", 0).put("tokens", 0).put("trained", false).put("trainable_parameters", 0)
                .put("model_parameters", modelParameters());
        writeResult(result);
    }

    /** The loop's state: fresh, or restored from the stage's latest checkpoint. */
    private LoopState resume(CheckpointStore store, java.util.List<Lane> lanes, Budget budget) throws IOException {
        RunConfig cfg = ctx.config();
        AdamW opt = new AdamW(manager(), training.weightDecay());
        BatchReader reader = new BatchReader(ctx.data(), "train", cfg.data().batchSize(),
                cfg.data().seed() + stage.name().hashCode());
        LearningRate[] rates = new LearningRate[lanes.size()];
        for (int i = 0; i < rates.length; i++) {
            rates[i] = new LearningRate(training, budget.total(), trainsInLanes() ? ctx.id() + " " + lanes.get(i).name()
                    : ctx.id());
        }
        LoopState st = new LoopState(lanes, trainsInLanes(), opt, reader, rates);
        var latest = store.latest();
        if (latest.isPresent()) {
            st.restore(latest.get().path(), studentWeights(), budget.tokensPerStep());
            LOG.info("{}: resuming at step {} of {}", ctx.id(), st.step, budget.total());
        } else {
            LOG.info("{}: {} steps of {} tokens{} ({} trainable parameters)", ctx.id(), budget.corpusSteps(),
                    budget.tokensPerStep(), budget.extraSteps() > 0 ? " and " + budget.extraSteps()
                            + " extra steps not read from the corpus" : "", count(st.params));
        }
        return st;
    }

    /**
     * One optimizer step: forward and backward of its micro-batches, divergence checks, clipping and the update,
     * validation when due, and its metrics line. Returns the validation loss, or NaN when it did not validate.
     */
    private double step(LoopState st, long totalSteps) throws IOException {
        long t0 = System.nanoTime();
        molt.teacher.nd.NativeMemory.trim(); // the last step's freed arrays leave the process before this one starts
        boolean peak = molt.pipeline.run.ProcessMemory.resetPeak();
        long faults = molt.teacher.nd.NativeMemory.minorFaults();
        StepTimes times = new StepTimes();
        java.util.List<BatchReader.Batch> batches = batches(st);
        times.data = System.nanoTime() - t0;
        long stepTokens = 0;
        for (BatchReader.Batch b : batches) {
            for (long[] row : b.rows()) {
                stepTokens += row.length - 1;
            }
        }
        double[] losses = accumulate(batches, st.step, times);
        double loss = mean(losses);
        long tOpt = System.nanoTime();
        double[] norms = new double[st.lanes.size()];
        double squares = 0;
        for (int i = 0; i < norms.length; i++) {
            norms[i] = st.opt.gradNorm(st.lanes.get(i).params());
            squares += norms[i] * norms[i];
        }
        double norm = norms.length == 1 ? norms[0] : Math.sqrt(squares); // the global norm over every lane
        if (!Double.isFinite(loss)) {
            throw new TrainingDiverged(ctx.id(), st.step + 1, loss);
        }
        if (!Double.isFinite(norm)) {
            throw new TrainingDiverged(ctx.id(), st.step + 1, loss, st.opt.nonFinite(st.params));
        }
        st.opt.advance();
        for (int i = 0; i < norms.length; i++) { // each lane clipped by its own norm, at its own rate
            double scale = training.clipNorm() > 0 && norms[i] > training.clipNorm() ? training.clipNorm() / norms[i]
                    : 1.0;
            apply(st, st.lanes.get(i), st.rates[i].forStep(st.step), scale);
        }
        times.optimizer = System.nanoTime() - tOpt;
        st.step++;
        st.tokens += stepTokens;
        st.lastLoss = loss;
        st.lastLosses = losses;
        double sec = (System.nanoTime() - t0) / 1e9;
        ObjectNode rec = MetricsLog.record().put("stage", ctx.id()).put("step", st.step)
                .put("tokens", st.tokens).put("loss", loss).put("lr", st.rates[0].current())
                .put("grad_norm", norm).put("tokens_per_s", stepTokens / sec)
                .put("ndarrays", liveArrays()).put("rss_mib", molt.pipeline.run.ProcessMemory.rssMib());
        if (peak) {
            rec.put("peak_rss_mib", molt.pipeline.run.ProcessMemory.peakMib()); // this step's peak, before validation
        }
        if (faults >= 0) {
            rec.put("page_faults", molt.teacher.nd.NativeMemory.minorFaults() - faults); // this step's, likewise
        }
        times.write(rec.putObject("phase_s"));
        if (st.inLanes) {
            ObjectNode byLane = rec.putObject("lanes");
            for (int i = 0; i < norms.length; i++) {
                byLane.putObject(st.lanes.get(i).name()).put("loss", losses[i]).put("grad_norm", norms[i])
                        .put("lr", st.rates[i].current());
            }
        }
        double val = Double.NaN;
        if (training.valBatches() > 0 && (st.step % training.valEvery() == 0 || st.step == totalSteps)) {
            val = validate(st, rec);
        }
        ctx.metrics().write(rec);
        return val;
    }

    /** The micro-batches of the next step: the stage's extra batch, or the corpus' next ones. */
    private java.util.List<BatchReader.Batch> batches(LoopState st) {
        java.util.List<BatchReader.Batch> batches = new java.util.ArrayList<>();
        BatchReader.Batch other = extraBatch(st.step);
        if (other != null) {
            batches.add(other);
        } else {
            for (int a = 0; a < accumulation(); a++) {
                batches.add(st.reader.nextBatch());
            }
        }
        return batches;
    }

    /**
     * Validates into the step's metrics line, keeping each lane's weights when they are its best so far; the loss
     * (the mean over lanes).
     */
    private double validate(LoopState st, ObjectNode rec) throws IOException {
        double[] vals = meanValidationLosses();
        double val = mean(vals);
        rec.put("val_loss", val);
        validationExtras(rec);
        Map<String, String> meta = Map.of("step", String.valueOf(st.step));
        for (int i = 0; i < vals.length; i++) {
            if (st.inLanes) {
                ((ObjectNode) rec.get("lanes").get(st.lanes.get(i).name())).put("val_loss", vals[i]);
            }
            if (st.rates[i].validated(vals[i])) {
                if (!st.inLanes) {
                    WeightsFile.write(bestFile(), studentWeights(), meta);
                } else {
                    WeightsFile.write(laneBestFile(st.lanes.get(i)), st.lanes.get(i).params(), meta);
                }
            }
        }
        return val;
    }

    /**
     * A parameter's learning rate as a multiple of its lane's (1 unless the stage trains some parameters at another
     * rate, e.g. mixers beside LoRA adapters); the schedule scales both alike.
     */
    protected double learningRateFactor(String parameter) {
        return 1.0;
    }

    /** The optimizer step of one lane at rate {@code lr}, each group of parameters at its factor of it. */
    private void apply(LoopState st, Lane lane, double lr, double scale) {
        Map<Double, Map<String, NDArray>> byFactor = new java.util.LinkedHashMap<>();
        lane.params().forEach((n, p) -> byFactor.computeIfAbsent(learningRateFactor(n),
                f -> new java.util.LinkedHashMap<>()).put(n, p));
        byFactor.forEach((f, params) -> st.opt.apply(params, f == 1.0 ? lr : lr * f, scale));
    }

    /** The mean of a step's per-lane values (the value itself for one lane). */
    private static double mean(double[] values) {
        if (values.length == 1) {
            return values[0];
        }
        double sum = 0;
        for (double v : values) {
            sum += v;
        }
        return sum / values.length;
    }

    private void logProgress(LoopState st, long totalSteps, Start start) {
        double elapsed = (System.nanoTime() - start.nanos()) / 1e9;
        molt.pipeline.run.Progress.step(ctx.id(), st.step, totalSteps, st.lastLoss,
                (st.tokens - start.tokens()) / elapsed, elapsed / (st.step - start.step()) * (totalSteps - st.step));
        if (st.step % training.logEvery() == 0 || st.step == totalSteps || st.step == 1) {
            double perStep = elapsed / (st.step - start.step());
            LOG.info("{} step {}/{} loss {} {} tokens/s ETA {}s", ctx.id(), st.step, totalSteps,
                    String.format("%.5f", st.lastLoss), String.format("%.0f", (st.tokens - start.tokens()) / elapsed),
                    String.format("%.0f", perStep * (totalSteps - st.step)));
        }
    }

    /** Keeps the best validated weights as the stage's final ones (as LoLCATs does) and writes result.json. */
    private void finish(LoopState st) throws IOException {
        Path fin = StageContext.finalWeights(ctx.stageDir());
        if (st.inLanes) {
            for (Lane lane : st.lanes) { // each lane's best weights (its last ones when it never validated)
                if (Files.isRegularFile(laneBestFile(lane))) {
                    WeightsFile.load(lane.params(), WeightsFile.read(laneBestFile(lane)));
                }
            }
            WeightsFile.write(fin, studentWeights(), Map.of());
        } else if (Files.isRegularFile(bestFile())) {
            AtomicFiles.writeBytes(fin, Files.readAllBytes(bestFile()));
        } else {
            WeightsFile.write(fin, studentWeights(), Map.of());
        }
        WeightsFile.load(studentWeights(), WeightsFile.read(fin));
        ObjectNode result = results();
        double[] bests = new double[st.rates.length];
        for (int i = 0; i < bests.length; i++) {
            bests[i] = st.rates[i].best();
        }
        double best = mean(bests);
        result.put("steps", st.step).put("tokens", st.tokens)
                .put("best_val_loss", Double.isFinite(best) ? best : null) // null: never validated
                .put("last_loss", st.lastLoss).put("trainable_parameters", count(st.params))
                .put("model_parameters", modelParameters());
        if (st.inLanes) {
            var byLane = result.putArray("lanes");
            for (int i = 0; i < bests.length; i++) {
                byLane.addObject().put("lane", st.lanes.get(i).name())
                        .put("best_val_loss", Double.isFinite(bests[i]) ? bests[i] : null)
                        .put("last_loss", st.lastLosses[i]).put("last_lr", st.rates[i].current());
            }
        }
        writeResult(result);
    }

    private Path bestFile() {
        return ctx.stageDir().resolve("best.safetensors");
    }

    /** A lane's best weights, when a stage trains several lanes. */
    private Path laneBestFile(Lane lane) {
        return ctx.stageDir().resolve("best-" + lane.name() + ".safetensors");
    }

    private void writeResult(ObjectNode result) throws IOException {
        AtomicFiles.writeString(ctx.stageDir().resolve("result.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result));
    }

    /** Where a step's time went, in nanoseconds: reading batches, {@link #prepare}, the loss, backward, the update. */
    private static final class StepTimes {
        long data;
        long prepare;
        long forward;
        long backward;
        long optimizer;

        void write(ObjectNode n) {
            n.put("data", data / 1e9).put("prepare", prepare / 1e9).put("forward", forward / 1e9)
                    .put("backward", backward / 1e9).put("optimizer", optimizer / 1e9);
        }
    }

    /** Forward and backward of one optimizer step's micro-batches (gradients accumulate); the summed loss per lane. */
    private double[] accumulate(java.util.List<BatchReader.Batch> batches, long step, StepTimes times) {
        double[] loss = null;
        for (int a = 0; a < batches.size(); a++) {
            BatchReader.Batch b = batches.get(a);
            try (NDManager s = manager().newSubManager()) {
                long t0 = System.nanoTime();
                P prepared = prepare(s, b);
                long t1 = System.nanoTime();
                times.prepare += t1 - t0;
                if (ownsBackward()) {
                    double[] l = lossAndBackward(s, b, step * accumulation() + a, prepared, batches.size());
                    if (loss == null) {
                        loss = new double[l.length];
                    }
                    for (int i = 0; i < l.length; i++) {
                        loss[i] += l[i];
                    }
                    times.backward += System.nanoTime() - t1; // forward (and any recomputation) and backward together
                    continue;
                }
                if (loss == null) {
                    loss = new double[1];
                }
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    // The mean over the step's micro-batches (one for a step of extraBatch).
                    NDArray l = loss(s, b, step * accumulation() + a, prepared).div(Scalars.of(batches.size()));
                    loss[0] += l.getFloat();
                    long t2 = System.nanoTime();
                    times.forward += t2 - t1;
                    gc.backward(l);
                    times.backward += System.nanoTime() - t2;
                }
            }
        }
        return loss;
    }

    /** The mean validation loss per lane over val_batches batches. */
    private double[] meanValidationLosses() {
        BatchReader val = new BatchReader(ctx.data(), "val", ctx.config().data().batchSize(), 0);
        double[] sum = null;
        for (int i = 0; i < training.valBatches(); i++) {
            try (NDManager s = manager().newSubManager()) {
                double[] l = validationLosses(s, val.nextBatch());
                if (sum == null) {
                    sum = new double[l.length];
                }
                for (int j = 0; j < l.length; j++) {
                    sum[j] += l[j];
                }
            }
        }
        for (int j = 0; j < sum.length; j++) {
            sum[j] /= training.valBatches();
        }
        return sum;
    }

    /** Writes a checkpoint; {@code val} is its validation loss when validated at this step (the store keeps the best). */
    private void checkpoint(CheckpointStore store, LoopState st, double val) throws IOException {
        Path tmp = store.begin(st.step);
        st.save(tmp, studentWeights(), ctx.header());
        store.commit(tmp, st.step, val);
    }
}
