package molt.pipeline.run;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import molt.data.DocumentSource;
import molt.data.PreparedDataset;
import molt.data.Sources;
import molt.pipeline.BuildInfo;
import molt.pipeline.config.RunConfig;
import molt.pipeline.eval.EvaluateStage;
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
            List<Job> jobs = jobs(cfg);
            RunState state = RunState.load(dir, jobs.stream().map(j -> new String[] {j.id(), j.stage().type()}).toList());
            // Lines logged after an unfinished stage's last checkpoint are replayed on resume: drop them first, so
            // metrics.jsonl reads as one uninterrupted run.
            for (Job job : jobs) {
                boolean loops = job.stage().trains() || job.stage().type().equals(RunConfig.TEACHER_PRETRAIN);
                if (loops && !state.done(job.id())) {
                    long step = molt.pipeline.train.TrainingLoop.resumeStep(job.dir(dir), cfg.checkpoint().keepLast());
                    MetricsLog.truncateAfter(dir.resolve("metrics.jsonl"), job.id(), step);
                }
            }
            // Each student chain (the run's own, then each variant's) carries its latest weights and export.
            Map<String, Path> previous = new LinkedHashMap<>();
            Map<String, Path> students = new LinkedHashMap<>();
            try (MetricsLog metrics = new MetricsLog(dir.resolve("metrics.jsonl"))) {
                for (Job job : jobs) {
                    RunConfig.Stage stage = job.stage();
                    Path stageDir = job.dir(dir);
                    if (state.done(job.id())) {
                        LOG.info("stage {} ({}) is done: skipped", job.id(), stage.type());
                    } else {
                        Files.createDirectories(stageDir);
                        state.set(job.id(), "running");
                        long t0 = System.nanoTime();
                        StageContext ctx = new StageContext(job.config(), stage, dir, stageDir, data, metrics, stop,
                                previous.get(job.chain()), header, teacherDir, job.id());
                        try {
                            runStage(ctx, device, stage.type().equals(RunConfig.EVALUATE)
                                    ? evaluationTargets(cfg, jobs, dir, state, students) : List.of());
                        } catch (RuntimeException | IOException e) {
                            state.set(job.id(), e instanceof molt.pipeline.train.StageStopped ? "stopped" : "failed");
                            throw e;
                        }
                        state.finish(job.id(), (System.nanoTime() - t0) / 1e9);
                    }
                    if (stage.trains()) {
                        previous.put(job.chain(), StageContext.finalWeights(stageDir));
                    } else if (stage.type().equals(RunConfig.EXPORT)) {
                        students.put(job.chain(), stageDir.resolve("student"));
                    }
                }
            }
            ObjectNode report = JSON.createObjectNode();
            report.put("name", cfg.name());
            report.put("teacher", teacherDir.toAbsolutePath().normalize().toString());
            Path student = students.get(MAIN);
            report.put("student", student == null ? null : student.toAbsolutePath().normalize().toString());
            ObjectNode variants = report.putObject("variants");
            for (RunConfig.Variant v : cfg.variants()) {
                Path vs = students.get(v.name());
                variants.putObject(v.name()).put("description", v.description())
                        .put("student", vs == null ? null : vs.toAbsolutePath().normalize().toString());
            }
            ObjectNode stages = report.putObject("stages");
            for (Job job : jobs) {
                Path result = job.dir(dir).resolve("result.json");
                ObjectNode n = stages.putObject(job.id());
                n.put("type", job.stage().type());
                n.put("seconds", state.seconds(job.id()));
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

    /** The chain name of the run's own student. */
    static final String MAIN = "student";

    /**
     * One stage run for one student chain: {@code id} names it in run.json, metrics and logs and places its
     * directory ({@code stages/<id>}); a variant's config carries the variant's student and LoRA settings.
     */
    record Job(String id, String chain, RunConfig config, RunConfig.Stage stage) {
        Path dir(Path runDir) {
            return runDir.resolve("stages").resolve(id);
        }
    }

    /**
     * The run's stages in execution order: the config's stages for the run's own student (evaluate stages held
     * back), then each variant's student stages (training and export, minus what it skips), then the evaluate
     * stages, so that they see every student.
     */
    static List<Job> jobs(RunConfig cfg) {
        List<Job> jobs = new ArrayList<>();
        for (RunConfig.Stage s : cfg.stages()) {
            if (!s.type().equals(RunConfig.EVALUATE)) {
                jobs.add(new Job(s.name(), MAIN, cfg, s));
            }
        }
        for (RunConfig.Variant v : cfg.variants()) {
            RunConfig vc = cfg.forVariant(v);
            for (RunConfig.Stage s : cfg.stages()) {
                if (RunConfig.perStudent(s) && !v.skip().contains(s.name())) {
                    jobs.add(new Job(v.name() + "/" + s.name(), v.name(), vc, s));
                }
            }
        }
        for (RunConfig.Stage s : cfg.stages()) {
            if (s.type().equals(RunConfig.EVALUATE)) {
                jobs.add(new Job(s.name(), MAIN, cfg, s));
            }
        }
        return jobs;
    }

    /**
     * What an evaluate stage compares: every exported student so far, with the stages that made it (for tokens,
     * parameters trained and time), the run's own student first.
     */
    private static List<EvaluateStage.Target> evaluationTargets(RunConfig cfg, List<Job> jobs, Path dir, RunState state,
                                                                Map<String, Path> students) {
        List<EvaluateStage.Target> out = new ArrayList<>();
        for (Map.Entry<String, Path> e : students.entrySet()) {
            String chain = e.getKey();
            RunConfig.Variant variant = cfg.variants().stream().filter(v -> v.name().equals(chain)).findFirst()
                    .orElse(null);
            RunConfig.Student st = variant == null ? cfg.student() : variant.student();
            String description = variant == null || variant.description().isEmpty() ? st.mixer() : variant.description();
            List<EvaluateStage.StageRecord> made = new ArrayList<>();
            for (Job j : jobs) {
                if (j.chain().equals(chain) && j.stage().trains()) {
                    made.add(new EvaluateStage.StageRecord(j.stage().name(), j.dir(dir), state.seconds(j.id())));
                }
            }
            out.add(new EvaluateStage.Target(chain, description, e.getValue(), made));
        }
        return out;
    }

    private static void runStage(StageContext ctx, Device device, List<EvaluateStage.Target> students)
            throws IOException {
        LOG.info("stage {} ({})", ctx.stage().name(), ctx.stage().type());
        switch (ctx.stage().type()) {
            case RunConfig.ATTENTION_TRANSFER -> {
                AttentionTransferStage s = new AttentionTransferStage(ctx, device);
                try {
                    if (s.hasMixers()) {
                        s.run();
                    } else {
                        LOG.info("{}: every layer keeps softmax attention: nothing to transfer", ctx.stage().name());
                        molt.teacher.io.WeightsFile.write(StageContext.finalWeights(ctx.stageDir()),
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
            case RunConfig.EVALUATE -> EvaluateStage.run(ctx, device, students);
            case RunConfig.TEACHER_PRETRAIN -> molt.pipeline.train.TeacherPretrainStage.runOrReuse(ctx, device);
            case RunConfig.DATA_PREPARE -> prepareStage(ctx, device);
            default -> throw new IllegalStateException(ctx.stage().type());
        }
    }
}
