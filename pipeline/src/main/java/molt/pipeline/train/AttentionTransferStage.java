package molt.pipeline.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import molt.pipeline.config.AttentionTransferSpec;
import molt.student.StudentModel;
import molt.teacher.model.Taps;
import molt.teacher.nd.Scalars;

/**
 * LoLCATs stage 1: the teacher is frozen and only the mixers' new parameters train, so that each layer's mixer
 * output (per head, before o_proj) matches the teacher's attention output on the teacher's own q, k, v: the loss
 * is mse_weight x MSE averaged over the mixer layers. Layers see the teacher's inputs, so no gradient crosses
 * layers. The final per-layer MSE on validation data shows which layers are hard to linearize.
 *
 * <p>Two modes. Together ({@code layer_groups: 0}): every mixer layer in one loop, one schedule, one clipping norm,
 * one validation loss. Per layer (a group of {@link LayerGroupTransfer}): the loop trains only the given layers, each
 * as a {@link Lane} of its own with loss mse_weight x its MSE, its own schedule, clipping, validation and best
 * weights; the teacher runs only up to the group's last layer.
 */
public final class AttentionTransferStage extends StudentStage<AttentionTransferSpec, Map<Integer, Taps.Layer>> {
    private final int[] mixerLayers;
    private final boolean perLayer;

    public AttentionTransferStage(StageContext ctx, Device device) {
        super(ctx, AttentionTransferSpec.class, device, false);
        this.mixerLayers = student.mixerLayers();
        this.perLayer = false;
        student.setMixersTrainable(true);
        student.setLoraTrainable(false);
    }

    /** The per-layer mode on {@code layers} of a {@code student} the caller owns, in {@code ctx}'s directory. */
    AttentionTransferStage(StageContext ctx, StudentModel student, int[] layers) {
        super(ctx, AttentionTransferSpec.class, student, false);
        this.mixerLayers = layers.clone();
        this.perLayer = true;
        student.setMixersTrainable(true);
        student.setLoraTrainable(false);
    }

    @Override
    protected Map<String, NDArray> trainable() {
        return perLayer ? groupParameters() : student.mixerParameters();
    }

    /** This group's mixer parameters, layer by layer. */
    private Map<String, NDArray> groupParameters() {
        Map<String, NDArray> m = new LinkedHashMap<>();
        for (int i : mixerLayers) {
            m.putAll(student.mixerParameters(i));
        }
        return m;
    }

    /** Per layer: the group's layers (those with parameters), each a lane; together: one lane. */
    @Override
    protected List<Lane> lanes() {
        if (!perLayer) {
            return super.lanes();
        }
        List<Lane> lanes = new ArrayList<>();
        for (int i : mixerLayers) {
            if (!student.mixerParameters(i).isEmpty()) { // gla_liger has nothing to train
                lanes.add(new Lane(laneName(i), student.mixerParameters(i)));
            }
        }
        return lanes;
    }

    @Override
    protected boolean trainsInLanes() {
        return perLayer;
    }

    /** A layer's lane name: {@code layer_<i>}. */
    static String laneName(int layer) {
        return "layer_" + layer;
    }

    /** Per layer, a checkpoint and the final weights hold the group's layers only. */
    @Override
    protected Map<String, NDArray> studentWeights() {
        return perLayer ? groupParameters() : super.studentWeights();
    }

    /** Inputs [B][T] of a packed batch [B][T+1]. */
    static long[][] inputs(long[][] batch) {
        long[][] x = new long[batch.length][];
        for (int b = 0; b < batch.length; b++) {
            x[b] = Arrays.copyOf(batch[b], batch[b].length - 1);
        }
        return x;
    }

    /** Per-layer MSE between mixer and teacher outputs, as [layers] (the teacher runs outside any collector). */
    private NDArray[] layerErrors(NDManager step, Map<Integer, Taps.Layer> taps) {
        NDArray[] errs = new NDArray[mixerLayers.length];
        for (int j = 0; j < mixerLayers.length; j++) {
            int i = mixerLayers[j];
            Taps.Layer t = taps.get(i);
            NDArray out = student.mixerOutput(step, i, t.hidden(), t.q(), t.k(), t.v()); // [B, T, Hq, D]
            errs[j] = out.sub(t.attentionOutput()).square().mean();
        }
        return errs;
    }

    private Map<Integer, Taps.Layer> teacherTaps(NDManager step, long[][] batch) {
        return student.base().forward(step, inputs(batch), new Taps.Request(
                java.util.Set.of(Arrays.stream(mixerLayers).boxed().toArray(Integer[]::new)), true, true, true, false,
                false)).taps();
    }

    /** True when the plan has at least one mixer layer (otherwise there is nothing to transfer). */
    public boolean hasMixers() {
        return mixerLayers.length > 0;
    }

    /** Attention transfer backpropagates layer by layer ({@link #lossAndBackward}). */
    @Override
    protected boolean ownsBackward() {
        return true;
    }

    /**
     * mse_weight x the mean over mixer layers of each layer's MSE, with each layer's term backpropagated as soon as
     * it is computed: no gradient crosses layers, so each mixer's parameters get exactly the gradient of the whole
     * loss (mse_weight / layers applied to the layer's MSE, the float operations one backward over the sum would do),
     * while only one layer's mixer graph is alive at a time. The returned loss sums the terms' values (sum / layers x
     * mse_weight). Each layer's taps are freed once its term is done.
     */
    @Override
    protected double[] lossAndBackward(NDManager step, molt.data.BatchReader.Batch batch, long stepIndex,
                                       Map<Integer, Taps.Layer> taps, int microBatches) {
        return perLayer ? perLayerLossAndBackward(step, taps, microBatches)
                : new double[] {lossAndBackward(step, taps, microBatches)};
    }

    /**
     * Per layer: each lane's loss mse_weight x its layer's MSE (divided by {@code microBatches}), backpropagated
     * on its own; the losses in lane order.
     */
    private double[] perLayerLossAndBackward(NDManager step, Map<Integer, Taps.Layer> taps, int microBatches) {
        List<Lane> lanes = lanes();
        double[] losses = new double[lanes.size()];
        try (ai.djl.training.GradientCollector gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
            for (int j = 0; j < lanes.size(); j++) {
                int layer = laneLayer(lanes.get(j));
                try (NDManager own = step.newSubManager()) {
                    Taps.Layer t = taps.remove(layer);
                    attach(t, own);
                    NDArray out = student.mixerOutput(own, layer, t.hidden(), t.q(), t.k(), t.v()); // [B, T, Hq, D]
                    NDArray loss = out.sub(t.attentionOutput()).square().mean()
                            .mul(Scalars.of((float) stage.mseWeight())).div(Scalars.of(microBatches));
                    gc.backward(loss);
                    losses[j] = loss.getFloat();
                }
            }
        }
        taps.values().forEach(AttentionTransferStage::close); // layers without parameters: nothing to train
        return losses;
    }

    /** The layer a lane trains. */
    private static int laneLayer(Lane lane) {
        return Integer.parseInt(lane.name().substring("layer_".length()));
    }

    private static void close(Taps.Layer t) {
        for (NDArray a : recorded(t)) {
            a.close();
        }
    }

    /** A layer's recordings that exist (hidden may be null). */
    private static List<NDArray> recorded(Taps.Layer t) {
        List<NDArray> out = new ArrayList<>();
        for (NDArray a : new NDArray[] {t.hidden(), t.q(), t.k(), t.v(), t.attentionOutput()}) {
            if (a != null) {
                out.add(a);
            }
        }
        return out;
    }

    /** Together: the mean over mixer layers, each layer's term backpropagated as soon as it is computed. */
    private double lossAndBackward(NDManager step, Map<Integer, Taps.Layer> taps, int microBatches) {
        NDArray sum = null;
        try (ai.djl.training.GradientCollector gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
            for (int j = 0; j < mixerLayers.length; j++) {
                try (NDManager own = step.newSubManager()) {
                    Taps.Layer t = taps.remove(mixerLayers[j]);
                    attach(t, own);
                    NDArray out = student.mixerOutput(own, mixerLayers[j], t.hidden(), t.q(), t.k(), t.v()); // [B, T, Hq, D]
                    NDArray err = out.sub(t.attentionOutput()).square().mean();
                    if (!student.mixer(mixerLayers[j]).parameters().isEmpty()) { // gla_liger has nothing to train
                        gc.backward(err.div(Scalars.of(mixerLayers.length)).mul(Scalars.of((float) stage.mseWeight()))
                                .div(Scalars.of(microBatches)));
                    }
                    NDArray value = err.stopGradient();
                    value.attach(step);
                    sum = sum == null ? value : sum.add(value);
                }
            }
        }
        return sum.div(Scalars.of(mixerLayers.length)).mul(Scalars.of((float) stage.mseWeight()))
                .div(Scalars.of(microBatches)).getFloat();
    }

    /** Moves a layer's recordings into {@code scope}, to be freed with it. */
    private static void attach(Taps.Layer t, NDManager scope) {
        for (NDArray a : recorded(t)) {
            a.attach(scope);
        }
    }

    @Override
    protected Map<Integer, Taps.Layer> prepare(NDManager step, molt.data.BatchReader.Batch batch) {
        return teacherTaps(step, batch.rows());
    }

    @Override
    protected double validationLoss(NDManager step, molt.data.BatchReader.Batch batch) {
        NDArray[] errs = layerErrors(step, teacherTaps(step, batch.rows()));
        double s = 0;
        for (NDArray e : errs) {
            s += e.getFloat();
        }
        return s / errs.length * stage.mseWeight();
    }

    /** Per layer: each lane's mse_weight x its layer's MSE; together: the one loss. */
    @Override
    protected double[] validationLosses(NDManager step, molt.data.BatchReader.Batch batch) {
        if (!perLayer) {
            return super.validationLosses(step, batch);
        }
        NDArray[] errs = layerErrors(step, teacherTaps(step, batch.rows()));
        List<Lane> lanes = lanes();
        double[] out = new double[lanes.size()];
        for (int j = 0; j < out.length; j++) {
            int at = java.util.Arrays.binarySearch(mixerLayers, laneLayer(lanes.get(j)));
            out[j] = errs[at].getFloat() * stage.mseWeight();
        }
        return out;
    }

    @Override
    protected ObjectNode results() {
        ObjectNode r = super.results();
        if (training.valBatches() == 0) {
            return r; // validation off: no per-layer errors measured
        }
        ArrayNode layers = r.putArray("per_layer_mse");
        double[] sums = new double[mixerLayers.length];
        double[] powers = new double[mixerLayers.length];
        var val = new molt.data.BatchReader(ctx.data(), "val", ctx.config().data().batchSize(), 0);
        for (int b = 0; b < training.valBatches(); b++) {
            try (NDManager s = manager().newSubManager()) {
                Map<Integer, Taps.Layer> taps = teacherTaps(s, val.next());
                for (int j = 0; j < mixerLayers.length; j++) {
                    powers[j] += taps.get(mixerLayers[j]).attentionOutput().square().mean().getFloat()
                            / training.valBatches();
                }
                NDArray[] errs = layerErrors(s, taps);
                for (int j = 0; j < errs.length; j++) {
                    sums[j] += errs[j].getFloat() / training.valBatches();
                }
            }
        }
        for (int j = 0; j < mixerLayers.length; j++) {
            // relative_mse: the error against the size of what the layer must reproduce (comparable across layers)
            layers.addObject().put("layer", mixerLayers[j]).put("mixer", student.plan().mixer(mixerLayers[j]))
                    .put("mse", sums[j]).put("teacher_mean_square", powers[j])
                    .put("relative_mse", powers[j] > 0 ? sums[j] / powers[j] : 0.0);
        }
        return r;
    }

    /**
     * Runs the stage (in layer groups when the spec asks for them), or, when every layer keeps softmax attention,
     * leaves empty final weights.
     */
    public static void runOrSkip(StageContext ctx, Device device) throws java.io.IOException {
        if (ctx.stage(AttentionTransferSpec.class).layerGroups() > 0) {
            LayerGroupTransfer.run(ctx, device);
            return;
        }
        AttentionTransferStage s = new AttentionTransferStage(ctx, device);
        try {
            if (s.hasMixers()) {
                s.run();
            } else {
                org.apache.logging.log4j.LogManager.getLogger(AttentionTransferStage.class).info(
                        "{}: every layer keeps softmax attention: nothing to transfer", ctx.stage().name());
                molt.teacher.io.WeightsFile.write(StageContext.finalWeights(ctx.stageDir()), Map.of(), Map.of());
            }
        } finally {
            s.close();
        }
    }
}
