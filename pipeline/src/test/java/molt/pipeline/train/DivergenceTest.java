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

    /** A stage whose loss turns NaN at step 5 (checkpoints every 2 steps). */
    static final class Diverging extends TrainingLoop {
        private final NDManager manager = NDManager.newBaseManager(Device.cpu());
        private final NDArray p = manager.create(new float[] {1f, 2f});

        Diverging(StageContext ctx) {
            super(ctx);
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
        protected NDArray loss(NDManager step, molt.data.BatchReader.Batch batch, long stepIndex, Object prepared) {
            NDArray l = p.square().sum();
            l.attach(step);
            return stepIndex >= 4 ? l.mul(Float.NaN) : l;
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
            Diverging stage = new Diverging(ctx);
            TrainingDiverged e = assertThrows(TrainingDiverged.class, stage::run);
            assertTrue(e.getMessage().contains("loss is NaN at step 5"), e.getMessage());
            assertTrue(e.getMessage().contains("last good checkpoint is kept"), e.getMessage());
        }
        CheckpointStore store = new CheckpointStore(stageDir.resolve("checkpoints"), 2);
        assertEquals(4L, store.latest().orElseThrow().step(), "the checkpoint before the NaN step remains");
    }

    /**
     * A stage whose gradients (not its loss) are NaN at step 3: sqrt(p - p) is 0, with gradient inf - inf. With
     * {@code transient}, only the first computation of that step is; otherwise every one.
     */
    static final class NanGradient extends TrainingLoop {
        private final NDManager manager = NDManager.newBaseManager(Device.cpu());
        private final NDArray p = manager.create(new float[] {1f, 2f});
        private final boolean transientNan;
        private int calls;

        NanGradient(StageContext ctx, boolean transientNan) {
            super(ctx);
            this.transientNan = transientNan;
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
        protected NDArray loss(NDManager step, molt.data.BatchReader.Batch batch, long stepIndex, Object prepared) {
            NDArray l = p.square().sum();
            l.attach(step);
            if (stepIndex == 2 && (!transientNan || calls++ == 0)) {
                return l.add(p.sub(p).sqrt().sum());
            }
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
            TrainingDiverged e = assertThrows(TrainingDiverged.class, new NanGradient(context(dir, metrics, stop), false)::run);
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
            assertThrows(StageStopped.class, new Diverging(ctx)::run);
        }
        assertEquals(0L, new CheckpointStore(dir.resolve("s/checkpoints"), 2).latest().orElseThrow().step());
    }
}
