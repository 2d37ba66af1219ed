package molt.pipeline.run;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import molt.data.DocumentSource;
import molt.data.PreparedDataset;
import molt.data.Sources;
import molt.pipeline.BuildInfo;
import molt.pipeline.config.RunConfig;
import molt.pipeline.train.AttentionTransferStage;
import molt.pipeline.train.ExportStage;
import molt.pipeline.train.LoraFinetuneStage;
import molt.pipeline.train.StageContext;
import molt.teacher.Devices;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.tokenizer.Tokenizers;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Runs a config's stages in order in its run directory: takes the directory's lock, refuses a directory made by a
 * different resolved config, writes the resolved config with molt's and DJL's versions, prepares the data with the
 * teacher's tokenizer, skips finished stages, resumes an interrupted one from its last checkpoint, and records stage
 * states in {@code run.json} and the outcome in {@code report.json}.
 */
public final class Runner {
    private static final Logger LOG = LogManager.getLogger(Runner.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String RESOLVED = "config.resolved.json";

    private Runner() {
    }

    /** Header stored in the run directory and in every checkpoint. */
    static ObjectNode header(RunConfig cfg) {
        ObjectNode h = JSON.createObjectNode();
        h.put("molt_version", BuildInfo.version());
        h.put("molt_commit", BuildInfo.commit());
        h.put("djl_version", BuildInfo.djlVersion());
        h.put("threads", cfg.threads());
        h.put("available_processors", Runtime.getRuntime().availableProcessors());
        h.set("config", cfg.toJson());
        return h;
    }

    public static Path run(RunConfig cfg, StopSignal stop) throws IOException {
        Path dir = cfg.outputDir();
        Files.createDirectories(dir);
        try (RunLock lock = RunLock.acquire(dir); RunLog log = RunLog.attach(dir.resolve("molt.log"))) {
            ObjectNode resolved = cfg.toJson();
            Path resolvedFile = dir.resolve(RESOLVED);
            if (Files.isRegularFile(resolvedFile)) {
                JsonNode old = JSON.readTree(resolvedFile.toFile());
                List<String> diff = RunConfig.differences(old.path("config"), resolved);
                if (!diff.isEmpty()) {
                    throw new InputException(dir, "was created by a different config (differs in " + String.join(", ", diff)
                            + "); use another output_dir or delete it");
                }
                LOG.info("resuming run in {}", dir);
            }
            ObjectNode header = header(cfg);
            AtomicFiles.writeString(resolvedFile, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(header));
            RunConfig.Stage pretrain = cfg.pretrainStage();
            Path teacherDir = pretrain != null ? molt.pipeline.train.TeacherPretrainStage.cacheDir(cfg) : cfg.teacher();
            if (pretrain == null && !Files.isDirectory(teacherDir)) {
                throw new InputException(teacherDir, "teacher.path: not a model directory");
            }
            Device device = Devices.resolve(cfg.device());
            PreparedDataset data;
            String first = cfg.data().promptColumn() != null ? cfg.data().promptColumn() : cfg.data().column();
            // A pretrained teacher uses molt's byte tokenizer; a given teacher its own.
            var tokenizer = pretrain != null ? new molt.teacher.tokenizer.ByteTokenizer() : Tokenizers.load(teacherDir);
            try (DocumentSource src = Sources.open(cfg.data().source(), first, cfg.data().responseColumn())) {
                data = PreparedDataset.prepare(src, tokenizer, cfg.data().seqLen(),
                        cfg.data().seed(), cfg.data().valFraction(), cfg.data().rowsPerShard(), dir.resolve("data"));
            }
            RunState state = RunState.load(dir, cfg);
            // Lines logged after an unfinished stage's last checkpoint are replayed on resume: drop them first, so
            // metrics.jsonl reads as one uninterrupted run.
            for (RunConfig.Stage stage : cfg.stages()) {
                boolean loops = stage.trains() || stage.type().equals(RunConfig.TEACHER_PRETRAIN);
                if (loops && !state.done(stage.name())) {
                    long step = molt.pipeline.train.TrainingLoop.resumeStep(dir.resolve("stages").resolve(stage.name()),
                            cfg.checkpoint().keepLast());
                    MetricsLog.truncateAfter(dir.resolve("metrics.jsonl"), stage.name(), step);
                }
            }
            Path previous = null;
            Path student = null;
            try (MetricsLog metrics = new MetricsLog(dir.resolve("metrics.jsonl"))) {
                for (RunConfig.Stage stage : cfg.stages()) {
                    Path stageDir = dir.resolve("stages").resolve(stage.name());
                    if (state.done(stage.name())) {
                        LOG.info("stage {} ({}) is done: skipped", stage.name(), stage.type());
                    } else {
                        Files.createDirectories(stageDir);
                        state.set(stage.name(), "running");
                        long t0 = System.nanoTime();
                        StageContext ctx = new StageContext(cfg, stage, dir, stageDir, data, metrics, stop, previous, header,
                                teacherDir);
                        try {
                            runStage(ctx, device, student);
                        } catch (RuntimeException | IOException e) {
                            state.set(stage.name(), e instanceof molt.pipeline.train.StageStopped ? "stopped" : "failed");
                            throw e;
                        }
                        state.finish(stage.name(), (System.nanoTime() - t0) / 1e9);
                    }
                    if (stage.trains()) {
                        previous = StageContext.finalWeights(stageDir);
                    } else if (stage.type().equals(RunConfig.EXPORT)) {
                        student = stageDir.resolve("student");
                    }
                }
            }
            ObjectNode report = JSON.createObjectNode();
            report.put("name", cfg.name());
            report.put("teacher", teacherDir.toAbsolutePath().normalize().toString());
            report.put("student", student == null ? null : student.toAbsolutePath().normalize().toString());
            ObjectNode stages = report.putObject("stages");
            for (RunConfig.Stage s : cfg.stages()) {
                Path result = dir.resolve("stages").resolve(s.name()).resolve("result.json");
                ObjectNode n = stages.putObject(s.name());
                n.put("type", s.type());
                n.put("seconds", state.seconds(s.name()));
                if (Files.isRegularFile(result)) {
                    n.set("result", JSON.readTree(result.toFile()));
                }
            }
            AtomicFiles.writeString(dir.resolve("report.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(report));
            LOG.info("run {} done: {}", cfg.name(), dir.resolve("report.json"));
            return dir;
        }
    }

    /**
     * The data_prepare stage: the run's data is prepared before any stage runs (every stage needs it); this stage
     * records the counts and, with {@code top_k} > 0, stores the teacher's top-k targets beside the shards.
     */
    private static void prepareStage(StageContext ctx, Device device) throws IOException {
        ObjectNode r = JSON.createObjectNode();
        r.put("dataset", ctx.data().dir().toString());
        r.put("train_sequences", ctx.data().sequences("train"));
        r.put("val_sequences", ctx.data().sequences("val"));
        if (ctx.stage().topK() > 0) {
            if (ctx.config().pretrainStage() != null) {
                throw new InputException(ctx.stage().name() + ": top_k needs the teacher, which teacher_pretrain has not made yet");
            }
            try (molt.teacher.model.LlamaModel t = molt.teacher.model.LlamaModel.load(ctx.teacherDir(), device)) {
                r.put("topk_sequences", molt.pipeline.train.TopKTargets.build(t, ctx.data(), ctx.stage().topK(),
                        ctx.config().data().batchSize()));
            }
            r.put("top_k", ctx.stage().topK());
        }
        AtomicFiles.writeString(ctx.stageDir().resolve("result.json"), JSON.writerWithDefaultPrettyPrinter()
                .writeValueAsString(r));
        LOG.info("{}: {} train / {} val sequences in {}", ctx.stage().name(), ctx.data().sequences("train"),
                ctx.data().sequences("val"), ctx.data().dir());
    }

    private static void runStage(StageContext ctx, Device device, Path student) throws IOException {
        LOG.info("stage {} ({})", ctx.stage().name(), ctx.stage().type());
        switch (ctx.stage().type()) {
            case RunConfig.ATTENTION_TRANSFER -> {
                AttentionTransferStage s = new AttentionTransferStage(ctx, device);
                try {
                    if (s.hasMixers()) {
                        s.run();
                    } else {
                        LOG.info("{}: every layer keeps softmax attention: nothing to transfer", ctx.stage().name());
                        molt.pipeline.train.WeightsFile.write(StageContext.finalWeights(ctx.stageDir()),
                                java.util.Map.of(), java.util.Map.of());
                    }
                } finally {
                    s.close();
                }
            }
            case RunConfig.LORA_FINETUNE -> {
                LoraFinetuneStage s = new LoraFinetuneStage(ctx, device);
                try {
                    s.run();
                } finally {
                    s.close();
                }
            }
            case RunConfig.EXPORT -> LOG.info("exported student to {}", ExportStage.run(ctx, device));
            case RunConfig.EVALUATE -> molt.pipeline.eval.EvaluateStage.run(ctx, device, student);
            case RunConfig.TEACHER_PRETRAIN -> molt.pipeline.train.TeacherPretrainStage.runOrReuse(ctx, device);
            case RunConfig.DATA_PREPARE -> prepareStage(ctx, device);
            default -> throw new IllegalStateException(ctx.stage().type());
        }
    }
}
