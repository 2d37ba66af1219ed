package molt.pipeline.run;

import ai.djl.Device;
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
import molt.pipeline.config.AttentionTransferSpec;
import molt.pipeline.config.ExportSpec;
import molt.pipeline.config.RunConfig;
import molt.pipeline.config.StageSpec;
import molt.pipeline.config.TrainingSpec;
import molt.pipeline.eval.EvaluateStage;
import molt.pipeline.train.ExportStage;
import molt.pipeline.train.StageContext;
import molt.pipeline.train.StageStopped;
import molt.pipeline.train.TeacherPretrainStage;
import molt.pipeline.train.TrainingLoop;
import molt.teacher.Devices;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.JsonFiles;
import molt.teacher.tokenizer.ByteTokenizer;
import molt.teacher.tokenizer.Tokenizers;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Runs a config's stages in order in its run directory: takes the directory's lock, refuses a directory made by a
 * different resolved config ({@link ResolvedConfig}), prepares the data with the teacher's tokenizer, skips finished
 * stages, resumes an interrupted one from its last checkpoint, and records stage states in {@code run.json} and the
 * outcome in {@code report.json}.
 */
public final class Runner {
    private static final Logger LOG = LogManager.getLogger(Runner.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private Runner() {
    }

    /** What every stage of a run shares, and the state of its stages. */
    private record Run(RunConfig cfg, Path dir, Path teacherDir, Device device, PreparedDataset data, ObjectNode header,
                       StopSignal stop, List<Job> jobs, RunState state) {
    }

    public static Path run(RunConfig config, StopSignal stop) throws IOException {
        RunConfig cfg = resolve(config);
        Path dir = cfg.outputDir();
        Preflight.check(cfg);
        Files.createDirectories(dir);
        try (RunLock lock = RunLock.acquire(dir); RunLog log = RunLog.attach(dir.resolve("molt.log"))) {
            ObjectNode header = ResolvedConfig.checkAndWrite(dir, cfg);
            Path teacherDir = teacherDir(cfg, dir);
            Device device = Devices.resolve(cfg.device());
            PreparedDataset data = prepareData(cfg, dir, teacherDir);
            List<Job> jobs = jobs(cfg);
            RunState state = RunState.load(dir, jobs.stream().map(j -> new String[] {j.id(), j.stage().type()}).toList());
            Run run = new Run(cfg, dir, teacherDir, device, data, header, stop, jobs, state);
            truncateMetrics(run);
            Map<String, Path> students = runJobs(run);
            writeReport(run, students);
            LOG.info("run {} done: {}", cfg.name(), dir.resolve("report.json"));
            return dir;
        }
    }

    /**
     * {@code cfg} with its {@code auto} settings chosen for its teacher, and PyTorch's thread count set to the choice
     * (a config that names its threads gets them even when the engine started before).
     */
    public static RunConfig resolve(RunConfig cfg) {
        molt.teacher.LlamaConfig teacher = Preflight.teacher(cfg);
        RunConfig r = cfg.resolveAuto(teacher);
        if (cfg.threads() == RunConfig.AUTO_THREADS || !cfg.precision().equals(r.precision())) {
            LOG.info("auto settings for a {}-parameter teacher: threads {}, precision {}",
                    molt.teacher.LlamaWeights.parameterCount(teacher), r.threads(), r.precision());
        }
        molt.teacher.Threads.set(r.threads());
        return r;
    }

    /**
     * The teacher: teacher.path, or the cached pretrained teacher. A run directory whose pretraining finished before
     * the cache key hashed FORMAT and the engine's versions resumes with the teacher it was made with (its cache
     * directory under the old key), so its students keep their base model.
     */
    static Path teacherDir(RunConfig cfg, Path runDir) {
        if (cfg.pretrainStage() == null) {
            return cfg.teacher();
        }
        Path current = TeacherPretrainStage.cacheDir(cfg);
        Path legacy = TeacherPretrainStage.legacyCacheDir(cfg);
        String status = JsonFiles.readObjectOrEmpty(runDir.resolve("run.json")).path("stages")
                .path(cfg.pretrainStage().name()).path("status").asText();
        if (!Files.exists(current) && Files.isDirectory(legacy) && status.equals("done")) {
            LOG.info("resuming with the teacher this run pretrained before the cache key changed: {}", legacy);
            return legacy;
        }
        return current;
    }

    /** The run's data, prepared (once) with the teacher's tokenizer: a pretrained teacher's is molt's byte tokenizer. */
    private static PreparedDataset prepareData(RunConfig cfg, Path dir, Path teacherDir) throws IOException {
        String first = cfg.data().promptColumn() != null ? cfg.data().promptColumn() : cfg.data().column();
        var tokenizer = cfg.pretrainStage() != null ? new ByteTokenizer() : Tokenizers.load(teacherDir);
        try (DocumentSource src = Sources.open(cfg.data().source(), first, cfg.data().responseColumn())) {
            return PreparedDataset.prepare(src, tokenizer, cfg.data().seqLen(), cfg.data().seed(),
                    cfg.data().valFraction(), cfg.data().rowsPerShard(), dir.resolve("data"));
        }
    }

    /**
     * Lines logged after an unfinished stage's last checkpoint are replayed on resume: drops them first, so that
     * metrics.jsonl reads as one uninterrupted run.
     */
    private static void truncateMetrics(Run run) throws IOException {
        for (Job job : run.jobs()) {
            if (job.stage() instanceof TrainingSpec && !run.state().done(job.id())) {
                for (var part : TrainingLoop.resumeSteps(job.dir(run.dir()), job.id(),
                        run.cfg().checkpoint().keepLast()).entrySet()) {
                    MetricsLog.truncateAfter(run.dir().resolve("metrics.jsonl"), part.getKey(), part.getValue());
                }
            }
        }
    }

    /**
     * Runs every job not done yet. Each student chain (the run's own, then each variant's) carries its latest weights
     * and export; returns the exported students by chain.
     */
    private static Map<String, Path> runJobs(Run run) throws IOException {
        Map<String, Path> previous = new LinkedHashMap<>();
        Map<String, Path> students = new LinkedHashMap<>();
        Map<String, RunConfig> chosen = new LinkedHashMap<>(); // a chain's config once softmax_layers: auto chose
        try (MetricsLog metrics = new MetricsLog(run.dir().resolve("metrics.jsonl"))) {
            for (Job job : run.jobs()) {
                StageSpec stage = job.stage();
                Path stageDir = job.dir(run.dir());
                RunConfig config = chosen.getOrDefault(job.chain(), job.config());
                if (run.state().done(job.id())) {
                    LOG.info("stage {} ({}) is done: skipped", job.id(), stage.type());
                } else {
                    StageContext ctx = new StageContext(config, stage, run.dir(), stageDir, run.data(), metrics,
                            run.stop(), previous.get(job.chain()), run.header(), run.teacherDir(), job.id(),
                            evaluationTargets(run, students));
                    runJob(run, job, ctx);
                }
                if (stage instanceof AttentionTransferSpec && config.student().autoSoftmax()
                        && !chosen.containsKey(job.chain())) {
                    chosen.put(job.chain(), config.withStudent(config.student().withSoftmaxLayers(
                            choosePlan(run, job, stageDir).softmaxLayers())));
                }
                if (stage.trains()) {
                    previous.put(job.chain(), StageContext.finalWeights(stageDir));
                } else if (stage instanceof ExportSpec) {
                    students.put(job.chain(), ExportStage.studentDir(stageDir));
                }
            }
        }
        return students;
    }

    /**
     * The softmax layers of a chain whose student has {@code softmax_layers: auto}: the choice stored in run.json, or,
     * the first time, the one its attention transfer's per-layer errors make (then stored).
     */
    private static HybridPlan.Choice choosePlan(Run run, Job job, Path stageDir) throws IOException {
        HybridPlan.Choice stored = run.state().plan(job.chain());
        if (stored != null) {
            LOG.info("{}: softmax attention kept in layers {} (chosen by {}, stored in run.json)", job.chain(),
                    stored.softmaxLayers(), stored.measuredBy());
            return stored;
        }
        Path result = stageDir.resolve("result.json");
        HybridPlan.Choice c = HybridPlan.choose(job.config().student(), JsonFiles.readObject(result), job.id(), result);
        run.state().setPlan(job.chain(), c);
        LOG.info("{}: softmax attention kept in layers {}: the {} largest relative attention-transfer errors of {}",
                job.chain(), c.softmaxLayers(), c.softmaxLayers().size() - job.config().student().softmaxLayers().size(),
                c.scores());
        return c;
    }

    /** Runs one job's stage, recording its state (running, then done, stopped or failed) and seconds. */
    private static void runJob(Run run, Job job, StageContext ctx) throws IOException {
        Files.createDirectories(ctx.stageDir());
        run.state().set(job.id(), "running");
        long t0 = System.nanoTime();
        try {
            LOG.info("stage {} ({})", ctx.stage().name(), ctx.stage().type());
            job.stage().runner().run(ctx, run.device());
        } catch (RuntimeException | IOException e) {
            run.state().set(job.id(), e instanceof StageStopped ? "stopped" : "failed");
            throw e;
        }
        run.state().finish(job.id(), (System.nanoTime() - t0) / 1e9);
    }

    private static void writeReport(Run run, Map<String, Path> students) throws IOException {
        ObjectNode report = JSON.createObjectNode();
        report.put("name", run.cfg().name());
        report.put("teacher", run.teacherDir().toAbsolutePath().normalize().toString());
        Path student = students.get(MAIN);
        report.put("student", student == null ? null : student.toAbsolutePath().normalize().toString());
        ObjectNode variants = report.putObject("variants");
        for (RunConfig.Variant v : run.cfg().variants()) {
            Path vs = students.get(v.name());
            variants.putObject(v.name()).put("description", v.description())
                    .put("student", vs == null ? null : vs.toAbsolutePath().normalize().toString());
        }
        if (!run.state().plans().isEmpty()) {
            report.set("plans", run.state().plans().deepCopy()); // softmax_layers: auto, per chain
        }
        ObjectNode stages = report.putObject("stages");
        for (Job job : run.jobs()) {
            Path result = job.dir(run.dir()).resolve("result.json");
            ObjectNode n = stages.putObject(job.id());
            n.put("type", job.stage().type());
            n.put("seconds", run.state().seconds(job.id()));
            if (Files.isRegularFile(result)) {
                n.set("result", JsonFiles.readObject(result));
            }
        }
        AtomicFiles.writeString(run.dir().resolve("report.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(report));
        molt.pipeline.report.RunReport.write(run.dir());
    }

    /** The chain name of the run's own student. */
    static final String MAIN = "student";

    /**
     * One stage run for one student chain: {@code id} names it in run.json, metrics and logs and places its
     * directory ({@code stages/<id>}); a variant's config carries the variant's student and LoRA settings.
     */
    record Job(String id, String chain, RunConfig config, StageSpec stage) {
        Path dir(Path runDir) {
            return runDir.resolve("stages").resolve(id);
        }
    }

    /**
     * The run's stages in execution order: the config's stages for the run's own student (those that run last held
     * back), then each variant's student stages (training and export, minus what it skips), then the stages that run
     * last (evaluate), so that they see every student.
     */
    static List<Job> jobs(RunConfig cfg) {
        List<Job> jobs = new ArrayList<>();
        for (StageSpec s : cfg.stages()) {
            if (!s.runsLast()) {
                jobs.add(new Job(s.name(), MAIN, cfg, s));
            }
        }
        for (RunConfig.Variant v : cfg.variants()) {
            RunConfig vc = cfg.forVariant(v);
            for (StageSpec s : cfg.stages()) {
                if (s.perStudent() && !v.skip().contains(s.name())) {
                    jobs.add(new Job(v.name() + "/" + s.name(), v.name(), vc, s));
                }
            }
        }
        for (StageSpec s : cfg.stages()) {
            if (s.runsLast()) {
                jobs.add(new Job(s.name(), MAIN, cfg, s));
            }
        }
        return jobs;
    }

    /**
     * What an evaluate stage compares: every exported student so far, with the stages that made it (for tokens,
     * parameters trained and time), the run's own student first.
     */
    private static List<EvaluateStage.Target> evaluationTargets(Run run, Map<String, Path> students) {
        RunConfig cfg = run.cfg();
        List<EvaluateStage.Target> out = new ArrayList<>();
        for (Map.Entry<String, Path> e : students.entrySet()) {
            String chain = e.getKey();
            RunConfig.Variant variant = cfg.variants().stream().filter(v -> v.name().equals(chain)).findFirst()
                    .orElse(null);
            RunConfig.Student st = variant == null ? cfg.student() : variant.student();
            String description = variant == null || variant.description().isEmpty() ? st.mixer() : variant.description();
            List<EvaluateStage.StageRecord> made = new ArrayList<>();
            for (Job j : run.jobs()) {
                if (j.chain().equals(chain) && j.stage().trains()) {
                    made.add(new EvaluateStage.StageRecord(j.stage().name(), j.dir(run.dir()),
                            run.state().seconds(j.id())));
                }
            }
            out.add(new EvaluateStage.Target(chain, description, e.getValue(), made));
        }
        return out;
    }
}
