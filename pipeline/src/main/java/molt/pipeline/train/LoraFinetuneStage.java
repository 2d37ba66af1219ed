package molt.pipeline.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import java.util.Map;
import molt.pipeline.config.LoraFinetuneSpec;
import molt.student.StudentModel;
import molt.teacher.model.Taps;
import molt.teacher.nd.Scalars;

/**
 * LoLCATs stage 2: mixers frozen (or, with train_mixers, trained too at their own rate, as Mamba-in-the-Llama trains
 * its SSM layers end to end), LoRA adapters on the configured projections train on next-token cross-entropy,
 * optionally plus KL(teacher || student) on temperature-softened distributions (the teacher runs online, before
 * the gradient collector opens). Dropout in the adapters is seeded per micro-step so resumed runs repeat exactly.
 */
public final class LoraFinetuneStage extends StudentStage<LoraFinetuneSpec, LoraFinetuneStage.TeacherTargets> {

    private final molt.data.TeacherTargets cache;

    public LoraFinetuneStage(StageContext ctx, Device device) throws java.io.IOException {
        super(ctx, LoraFinetuneSpec.class, device, true);
        student.setMixersTrainable(stage.trainMixers());
        student.setLoraTrainable(true);
        if (stage.trainMixers()) {
            org.apache.logging.log4j.LogManager.getLogger(getClass()).info("{}: mixers train too, at {}",
                    ctx.id(), mixerRates());
        }
        if (stage.klWeight() > 0 && stage.klSource().equals("cache")) {
            java.nio.file.Path first = ctx.data().shards("train").get(0);
            if (!java.nio.file.Files.isRegularFile(molt.data.TeacherTargets.fileFor(first))) {
                org.apache.logging.log4j.LogManager.getLogger(getClass()).info(
                        "{}: computing the teacher's top-{} targets once for {}", stage.name(), stage.topK(), ctx.data().dir());
                try (StudentModel teacherOnly = StudentFactory.build(ctx, device, false)) {
                    TopKTargets.build(teacherOnly.base(), ctx.data(), stage.topK(), ctx.config().data().batchSize(),
                            true);
                }
            }
            this.cache = new molt.data.TeacherTargets(ctx.data(), "train");
            if (cache.k() != stage.topK()) {
                throw new molt.teacher.InputException(ctx.data().dir(), "holds top-" + cache.k()
                        + " teacher targets, the stage asks for top_k " + stage.topK());
            }
        } else {
            this.cache = null;
        }
    }

    @Override
    protected int accumulation() {
        return stage.gradAccum();
    }

    @Override
    protected Map<String, NDArray> trainable() {
        if (!stage.trainMixers()) {
            return student.loraParameters();
        }
        Map<String, NDArray> all = new java.util.LinkedHashMap<>(student.loraParameters());
        all.putAll(student.mixerParameters());
        return all;
    }

    /** A mixer parameter's name starts with this prefix and its layer index ({@code model.layers.<i>.self_attn.mixer.}). */
    private static final java.util.regex.Pattern MIXER_PARAMETER =
            java.util.regex.Pattern.compile("model\\.layers\\.(\\d+)\\.self_attn\\.mixer\\..*");

    /** With train_mixers, a mixer parameter trains at its layer's mixer rate: mixer_lr, or the mixer's default. */
    @Override
    protected double learningRateFactor(String parameter) {
        java.util.regex.Matcher m = MIXER_PARAMETER.matcher(parameter);
        if (!stage.trainMixers() || !m.matches()) {
            return 1.0;
        }
        return mixerRate(Integer.parseInt(m.group(1))) / training.lr();
    }

    /** The learning rate of layer {@code layer}'s mixer. */
    private double mixerRate(int layer) {
        return stage.mixerLr() != null ? stage.mixerLr()
                : molt.pipeline.config.MixerLearningRates.of(student.plan().mixer(layer));
    }

    /** Each mixer's rate, for the log. */
    private Map<String, Double> mixerRates() {
        Map<String, Double> r = new java.util.TreeMap<>();
        for (int i : student.mixerLayers()) {
            if (!student.mixerParameters(i).isEmpty()) { // gla_liger, window_only: nothing to train
                r.put(student.plan().mixer(i), mixerRate(i));
            }
        }
        return r;
    }

    /** Next-token targets [B, T, 1] of a packed batch [B][T+1]. */
    static NDArray targets(NDManager m, long[][] batch) {
        int b = batch.length;
        int t = batch[0].length - 1;
        long[] y = new long[b * t];
        for (int i = 0; i < b; i++) {
            System.arraycopy(batch[i], 1, y, i * t, t);
        }
        return molt.teacher.nd.NativeArrays.longs(m, y, new ai.djl.ndarray.types.Shape(b, t, 1)); // [B, T, 1]
    }

    /**
     * Teacher targets: top-k ids and log-probabilities [B, T, k] from the cache, or (ids null) the full distribution
     * [B, T, V] online.
     */
    record TeacherTargets(NDArray ids, NDArray logprobs) {
    }

    @Override
    protected TeacherTargets prepare(NDManager step, molt.data.BatchReader.Batch batch) {
        if (stage.klWeight() == 0) {
            return null;
        }
        if (cache != null) {
            long[][] rows = batch.rows();
            int t = rows[0].length - 1;
            int k = cache.k();
            long[] ids = new long[rows.length * t * k];
            float[] lp = new float[ids.length];
            for (int b = 0; b < rows.length; b++) {
                molt.data.TopKCache.Entry e = cache.entry(batch.shards()[b], batch.rowIndices()[b], rows[b]);
                for (int j = 0; j < t * k; j++) {
                    ids[b * t * k + j] = e.topIds()[j];
                    lp[b * t * k + j] = e.topLogprobs()[j];
                }
            }
            ai.djl.ndarray.types.Shape shape = new ai.djl.ndarray.types.Shape(rows.length, t, k);
            return new TeacherTargets(molt.teacher.nd.NativeArrays.longs(step, ids, shape),
                    molt.teacher.nd.NativeArrays.floats(step, lp, shape)); // [B, T, k]
        }
        NDArray teacher = student.base().forward(step, AttentionTransferStage.inputs(batch.rows()),
                Taps.Request.none()).logits();
        return new TeacherTargets(null, teacher.div(Scalars.of((float) stage.temperature())).logSoftmax(-1));
    }

    /**
     * Mean next-token cross-entropy; with a loss mask (prompt/response data) only over target tokens whose mask is
     * 1, so prompt tokens are never learned.
     */
    static NDArray crossEntropy(NDManager step, NDArray logits, molt.data.BatchReader.Batch batch) {
        NDArray nll = logits.logSoftmax(-1).gather(targets(step, batch.rows()), -1).neg(); // [B, T, 1]
        return positionMean(step, nll, batch, null);
    }

    /**
     * KL(teacher || student) = sum_j p_t(j) (log p_t(j) - log p_s(j)) per position, from log-probabilities
     * [B, T, K] over the same K tokens (the whole vocabulary, or the teacher's top k), averaged like cross-entropy.
     */
    static NDArray klDivergence(NDManager step, NDArray teacherLogp, NDArray studentLogp,
                                molt.data.BatchReader.Batch batch, int[] slice) {
        NDArray perPosition = teacherLogp.exp().mul(teacherLogp.sub(studentLogp)).sum(new int[] {-1}); // [B, t]
        return positionMean(step, perPosition, batch, slice);
    }

    /**
     * The mean of a per-position loss [B, T] or [B, T, 1] over the positions that are learned: all of them, or with
     * a loss mask (prompt/response data) those whose target token has mask 1. Cross-entropy and KL share it, so
     * distillation never learns the prompt either.
     */
    static NDArray positionMean(NDManager step, NDArray perPosition, molt.data.BatchReader.Batch batch, int[] slice) {
        if (batch.masks() == null) {
            if (slice == null) {
                return perPosition.mean();
            }
            long all = (long) batch.rows().length * (batch.rows()[0].length - 1);
            return perPosition.sum().div(Scalars.of((float) all)); // this slice's share of the mean
        }
        NDArray m = targets(step, batch.masks()).toType(ai.djl.ndarray.types.DataType.FLOAT32, false); // [B, T, 1]
        if (perPosition.getShape().dimension() == 2) {
            m = m.squeeze(-1); // [B, T]
        }
        NDArray count = m.sum().maximum(Scalars.of(1f)); // positions learned in the whole batch
        return perPosition.mul(slice(m, slice)).sum().div(count);
    }

    @Override
    protected NDArray loss(NDManager step, molt.data.BatchReader.Batch batch, long stepIndex,
                           TeacherTargets prepared) {
        student.setTraining(true, ctx.config().seed() * 1_000_003L + stepIndex);
        NDArray logits = student.logits(step, AttentionTransferStage.inputs(batch.rows())); // [B, T, V]
        return loss(step, logits, batch, prepared, null);
    }

    /**
     * ce_weight x cross-entropy + kl_weight x KL on {@code logits} [B, T, V]: the whole loss when {@code slice} is
     * null, else the share of positions slice[0]..slice[1]-1 (logits and the teacher's targets of those positions;
     * shares over all positions sum to the loss).
     */
    private NDArray loss(NDManager step, NDArray logits, molt.data.BatchReader.Batch batch, TeacherTargets prepared,
                         int[] slice) {
        NDArray loss = null;
        if (stage.ceWeight() > 0) {
            NDArray nll = logits.logSoftmax(-1).gather(slice(targets(step, batch.rows()), slice), -1).neg(); // [B, t, 1]
            loss = positionMean(step, nll, batch, slice).mul(Scalars.of((float) stage.ceWeight()));
        }
        if (stage.klWeight() > 0 && prepared.ids() != null) {
            TeacherTargets c = prepared;
            // KL over the teacher's top-k support: sum_j p_t(j) (log p_t(j) - log p_s(j)), temperature 1.
            NDArray studentLogp = logits.logSoftmax(-1).gather(slice(c.ids(), slice), -1); // [B, t, k]
            NDArray kl = klDivergence(step, slice(c.logprobs(), slice), studentLogp, batch, slice);
            NDArray term = kl.mul(Scalars.of((float) stage.klWeight()));
            loss = loss == null ? term : loss.add(term);
        } else if (stage.klWeight() > 0) {
            NDArray teacherLogp = slice(prepared.logprobs(), slice);
            NDArray studentLogp = logits.div(Scalars.of((float) stage.temperature())).logSoftmax(-1);
            float t2 = (float) (stage.temperature() * stage.temperature());
            NDArray kl = klDivergence(step, teacherLogp, studentLogp, batch, slice).mul(Scalars.of(t2));
            NDArray term = kl.mul(Scalars.of((float) stage.klWeight()));
            loss = loss == null ? term : loss.add(term);
        }
        return loss;
    }

    /** Positions slice[0]..slice[1]-1 of a [B, T, ...] array (all of it for a null slice). */
    private static NDArray slice(NDArray a, int[] slice) {
        return slice == null ? a : a.get(new NDIndex(":, {}:{}", slice[0], slice[1]));
    }

    /**
     * With 16-bit frozen weights (or {@code recompute: true}) a step keeps only each layer's input and recomputes
     * the layer during backward ({@link StudentModel#recomputedStep}): widened weights and activations live one
     * layer at a time, and logits a slice of positions at a time.
     */
    @Override
    protected boolean ownsBackward() {
        return stage.recompute().equals("true")
                || (stage.recompute().equals("auto") && student.base().precision() != molt.teacher.Precision.F32);
    }

    /** Logits per slice: about 2^26 values ({@value #LOGIT_BLOCK}), whatever the vocabulary. */
    static final int LOGIT_BLOCK = 1 << 26;

    @Override
    protected double[] lossAndBackward(NDManager step, molt.data.BatchReader.Batch batch, long stepIndex,
                                       TeacherTargets prepared, int microBatches) {
        long[][] inputs = AttentionTransferStage.inputs(batch.rows());
        student.setTraining(true, 0);
        int positions = (int) Math.max(1, LOGIT_BLOCK / ((long) inputs.length * student.config().vocabSize()));
        try (ai.djl.training.GradientCollector gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
            return new double[] {student.recomputedStep(step, inputs, ctx.config().seed() * 1_000_003L + stepIndex,
                    positions, (scope, logits, from, to) -> loss(scope, logits, batch, prepared, new int[] {from, to})
                            .div(Scalars.of(microBatches)), gc)};
        }
    }

    @Override
    protected double validationLoss(NDManager step, molt.data.BatchReader.Batch batch) {
        student.setTraining(false, 0);
        return crossEntropy(step, student.logits(step, AttentionTransferStage.inputs(batch.rows())), batch).getFloat();
    }

    /** Runs the stage and releases its models. */
    public static void run(StageContext ctx, Device device) throws java.io.IOException {
        LoraFinetuneStage s = new LoraFinetuneStage(ctx, device);
        try {
            s.run();
        } finally {
            s.close();
        }
    }
}
