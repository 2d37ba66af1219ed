package molt.pipeline.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.student.StudentModel;
import molt.teacher.model.Taps;

/**
 * LoLCATs stage 2: mixers frozen, LoRA adapters on the configured projections train on next-token cross-entropy,
 * optionally plus KL(teacher || student) on temperature-softened distributions (the teacher runs online, before
 * the gradient collector opens). Dropout in the adapters is seeded per micro-step so resumed runs repeat exactly.
 */
public final class LoraFinetuneStage extends TrainingLoop {
    private final StudentModel student;
    private final NDManager manager;

    public LoraFinetuneStage(StageContext ctx, Device device) {
        super(ctx);
        this.student = StudentFactory.build(ctx, device, true);
        this.manager = NDManager.newBaseManager(device);
        student.setMixersTrainable(false);
        student.setLoraTrainable(true);
    }

    @Override
    protected NDManager manager() {
        return manager;
    }

    @Override
    protected int accumulation() {
        return stage.gradAccum();
    }

    @Override
    protected Map<String, NDArray> trainable() {
        return student.loraParameters();
    }

    @Override
    protected Map<String, NDArray> studentWeights() {
        Map<String, NDArray> m = new LinkedHashMap<>(student.mixerParameters());
        m.putAll(student.loraParameters());
        return m;
    }

    private static NDArray targets(NDManager m, long[][] batch) {
        int b = batch.length;
        int t = batch[0].length - 1;
        long[] y = new long[b * t];
        for (int i = 0; i < b; i++) {
            System.arraycopy(batch[i], 1, y, i * t, t);
        }
        return m.create(y, new ai.djl.ndarray.types.Shape(b, t, 1)); // [B, T, 1]
    }

    @Override
    protected Object prepare(NDManager step, long[][] batch) {
        if (stage.klWeight() == 0) {
            return null;
        }
        NDArray teacher = student.base().forward(step, AttentionTransferStage.inputs(batch), Taps.Request.none()).logits();
        return teacher.div((float) stage.temperature()).logSoftmax(-1); // [B, T, V]
    }

    @Override
    protected NDArray loss(NDManager step, long[][] batch, long stepIndex, Object prepared) {
        student.setTraining(true, ctx.config().seed() * 1_000_003L + stepIndex);
        NDArray logits = student.logits(step, AttentionTransferStage.inputs(batch)); // [B, T, V]
        NDArray loss = null;
        if (stage.ceWeight() > 0) {
            NDArray logp = logits.logSoftmax(-1);
            NDArray ce = logp.gather(targets(step, batch), -1).mean().neg();
            loss = ce.mul((float) stage.ceWeight());
        }
        if (stage.klWeight() > 0) {
            NDArray teacherLogp = (NDArray) prepared;
            NDArray studentLogp = logits.div((float) stage.temperature()).logSoftmax(-1);
            float t2 = (float) (stage.temperature() * stage.temperature());
            NDArray kl = teacherLogp.exp().mul(teacherLogp.sub(studentLogp)).sum(new int[] {-1}).mean().mul(t2);
            NDArray term = kl.mul((float) stage.klWeight());
            loss = loss == null ? term : loss.add(term);
        }
        return loss;
    }

    @Override
    protected double validationLoss(NDManager step, long[][] batch) {
        student.setTraining(false, 0);
        NDArray logp = student.logits(step, AttentionTransferStage.inputs(batch)).logSoftmax(-1);
        return -logp.gather(targets(step, batch), -1).mean().getFloat();
    }

    public void close() {
        manager.close();
        student.close();
    }
}
