package molt.pipeline.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import molt.data.JsonlDocuments;
import molt.data.PreparedDataset;
import molt.pipeline.config.AttentionTransferSpec;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.run.CheckpointStore;
import molt.pipeline.run.MetricsLog;
import molt.pipeline.run.PipelineTestSupport;
import molt.pipeline.run.StopSignal;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DivergenceTest {

    /** A stage training p = [1, 2] on a scripted loss of (p, micro-step index). */
    static final class Scripted extends TrainingLoop<AttentionTransferSpec, Void> {
        private final NDManager manager = NDManager.newBaseManager(Device.cpu());
        private final NDArray p = manager.create(new float[] {1f, 2f});
        private final java.util.function.BiFunction<NDArray, Long, NDArray> script;

        Scripted(StageContext ctx, java.util.function.BiFunction<NDArray, Long, NDArray> script) {
            super(ctx, AttentionTransferSpec.class);
            this.script = script;
            p.setRequiresGradient(true);
        }

        @Override
        protected Map<String, NDArray> trainable() {
            return Map.of("p", p);
        }

        @Override
        protected Map<String, NDArray> studentWeights() {
            return Map.of("p", p);
        }

        @Override
        protected NDArray loss(NDManager step, molt.data.BatchReader.Batch batch, long stepIndex, Void prepared) {
            NDArray l = script.apply(p, stepIndex);
            l.attach(step);
            return l;
        }

        @Override
        protected double validationLoss(NDManager step, molt.data.BatchReader.Batch batch) {
            return 0;
        }

        @Override
        protected NDManager manager() {
            return manager;
        }
    }

    /** A loss that turns NaN at step 5 (checkpoints every 2 steps). */
    static Scripted diverging(StageContext ctx) {
        return new Scripted(ctx, (p, i) -> i >= 4 ? p.square().sum().mul(Float.NaN) : p.square().sum());
    }

    @Test
    void aNonFiniteLossStopsTheStageAndKeepsTheLastGoodCheckpoint(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        RunConfig cfg = ConfigLoader.load(PipelineTestSupport.config(dir, teacher, PipelineTestSupport.corpus(dir), ""),
                List.of());
        PreparedDataset data = PreparedDataset.prepare(new JsonlDocuments(PipelineTestSupport.corpus(dir), "text"),
                new ByteTokenizer(), 32, 0, 0.1, 16, dir.resolve("data"));
        Path stageDir = dir.resolve("stage");
        try (MetricsLog metrics = new MetricsLog(dir.resolve("metrics.jsonl")); StopSignal stop = StopSignal.manual()) {
            StageContext ctx = new StageContext(cfg, cfg.stages().get(0), dir, stageDir, data, metrics, stop, null,
                    MetricsLog.record(), teacher);
            Scripted stage = diverging(ctx);
            TrainingDiverged e = assertThrows(TrainingDiverged.class, stage::run);
            assertTrue(e.getMessage().contains("loss is NaN at step 5"), e.getMessage());
            assertTrue(e.getMessage().contains("last good checkpoint is kept"), e.getMessage());
        }
        CheckpointStore store = new CheckpointStore(stageDir.resolve("checkpoints"), 2);
        assertEquals(4L, store.latest().orElseThrow().step(), "the checkpoint before the NaN step remains");
    }

    private static StageContext context(Path dir, MetricsLog metrics, StopSignal stop) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        RunConfig cfg = ConfigLoader.load(PipelineTestSupport.config(dir, teacher, PipelineTestSupport.corpus(dir), ""),
                List.of());
        PreparedDataset data = PreparedDataset.prepare(new JsonlDocuments(PipelineTestSupport.corpus(dir), "text"),
                new ByteTokenizer(), 32, 0, 0.1, 16, dir.resolve("data"));
        return new StageContext(cfg, cfg.stages().get(0), dir, dir.resolve("stage"), data, metrics, stop, null,
                MetricsLog.record(), teacher);
    }

    @Test
    void nonFiniteGradientsWithAFiniteLossStopTheStageBeforeUpdating(@TempDir Path dir) throws Exception {
        try (MetricsLog metrics = new MetricsLog(dir.resolve("metrics.jsonl")); StopSignal stop = StopSignal.manual()) {
            TrainingDiverged e = assertThrows(TrainingDiverged.class, new Scripted(context(dir, metrics, stop),
                    // sqrt(p - p) is 0, with gradient inf - inf = NaN: a finite loss, non-finite gradients.
                    (p, i) -> i == 2 ? p.square().sum().add(p.sub(p).sqrt().sum()) : p.square().sum())::run);
            assertTrue(e.getMessage().contains("gradients are not finite at step 3") && e.getMessage().contains("[p]"),
                    e.getMessage());
        }
    }

    @Test
    void aStopRequestCheckpointsAndStops(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        RunConfig cfg = ConfigLoader.load(PipelineTestSupport.config(dir, teacher, PipelineTestSupport.corpus(dir), ""),
                List.of());
        PreparedDataset data = PreparedDataset.prepare(new JsonlDocuments(PipelineTestSupport.corpus(dir), "text"),
                new ByteTokenizer(), 32, 0, 0.1, 16, dir.resolve("data"));
        try (MetricsLog metrics = new MetricsLog(dir.resolve("metrics.jsonl")); StopSignal stop = StopSignal.manual()) {
            stop.request();
            StageContext ctx = new StageContext(cfg, cfg.stages().get(0), dir, dir.resolve("s"), data, metrics, stop,
                    null, MetricsLog.record(), teacher);
            assertThrows(StageStopped.class, diverging(ctx)::run);
        }
        assertEquals(0L, new CheckpointStore(dir.resolve("s/checkpoints"), 2).latest().orElseThrow().step());
    }
}
