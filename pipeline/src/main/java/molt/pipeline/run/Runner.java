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
import molt.pipeline.config.DataPrepareSpec;
import molt.pipeline.config.ExportSpec;
import molt.pipeline.config.RunConfig;
import molt.pipeline.config.StageSpec;
import molt.pipeline.config.TrainingSpec;
import molt.pipeline.eval.EvaluateStage;
import molt.pipeline.train.ExportStage;
import molt.pipeline.train.LayerGroupTransfer;
import molt.pipeline.train.StageContext;
import molt.pipeline.train.StageStopped;
import molt.pipeline.train.TeacherPretrainStage;
import molt.pipeline.train.TopKTargets;
import molt.pipeline.train.TrainingLoop;
import molt.teacher.Devices;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.JsonFiles;
import molt.teacher.model.LlamaModel;
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

    public static Path run(RunConfig config, StopSignal stop) throws IOException {
        return run(config, stop, Dispatcher.IN_PROCESS);
    }

    /**
     * Runs (or resumes) {@code config}'s run, its units executed by {@code dispatcher}: this process holds the run's
     * lock, prepares the data, records every stage's state in run.json and writes the report; the stages themselves
     * run wherever the dispatcher puts them.
     */
    public static Path run(RunConfig config, StopSignal stop, Dispatcher dispatcher) throws IOException {
        RunConfig cfg = resolve(config);
        Path dir = cfg.outputDir();
        Preflight.check(cfg);
        Files.createDirectories(dir);
        try (RunLock lock = RunLock.acquire(dir); RunLog log = RunLog.attach(dir.resolve("molt.log"))) {
            ObjectNode header = ResolvedConfig.checkAndWrite(dir, cfg);
            Path teacherDir = teacherDir(cfg, dir);
            PreparedDataset data = prepareData(cfg, dir, teacherDir);
            List<Job> jobs = jobs(cfg);
            RunState state = RunState.load(dir, jobs.stream().map(j -> new String[] {j.id(), j.stage().type()}).toList());
            Session run = new Session(cfg, dir, teacherDir, Devices.resolve(cfg.device()), data, header, stop, jobs,
                    state);
            truncateMetrics(run);
            Map<String, Path> students;
            try {
                students = runJobs(run, dispatcher);
            } finally {
                KeptTeacher.release();
            }
            writeReport(run, students);
            LOG.info("run {} done: {}", cfg.name(), dir.resolve("report.json"));
            return dir;
        }
    }

    /**
     * What every stage of a run shares, and the state of its stages (null in a session opened apart from the process
     * that runs the run, which alone writes run.json).
     */
    public static final class Session {
        private final RunConfig cfg;
        private final Path dir;
        private final Path teacherDir;
        private final Device device;
        private final PreparedDataset data;
        private final ObjectNode header;
        private final StopSignal stop;
        private final List<Job> jobs;
        private final RunState state;
        private MetricsLog metrics;

        Session(RunConfig cfg, Path dir, Path teacherDir, Device device, PreparedDataset data, ObjectNode header,
                StopSignal stop, List<Job> jobs, RunState state) {
            this.cfg = cfg;
            this.dir = dir;
            this.teacherDir = teacherDir;
            this.device = device;
            this.data = data;
            this.header = header;
            this.stop = stop;
            this.jobs = jobs;
            this.state = state;
        }

        /**
         * The run of {@code config} (resolved, {@link Runner#resolve}) as the process that runs it has set it up: its
         * header, teacher and prepared data read from the run directory. For a task that executes units of a run
         * elsewhere (on a shared filesystem); it takes no lock and writes no run state.
         */
        public static Session open(RunConfig config, StopSignal stop) {
            return open(config, stop, Devices.resolve(config.device()));
        }

        /** As {@link #open(RunConfig, StopSignal)}, on {@code device} (the GPU a scheduler gave the task). */
        public static Session open(RunConfig config, StopSignal stop, Device device) {
            Path dir = config.outputDir();
            ResolvedConfig.check(dir, config);
            ObjectNode header = JsonFiles.readObject(dir.resolve(ResolvedConfig.FILE));
            return new Session(config, dir, teacherDir(config, dir), device, PreparedDataset.open(dir.resolve("data")),
                    header, stop, jobs(config), null);
        }

        public RunConfig config() {
            return cfg;
        }

        public Path dir() {
            return dir;
        }

        /** The run's metrics log, in the process that runs the run. */
        public MetricsLog metrics() {
            return metrics;
        }

        /**
         * Executes one unit, its metrics going to {@code metricsLog}; {@code students} are the exported students an
         * evaluate stage compares. A stage or layer group resumes from its checkpoints, and a layer group or top-k
         * shard found complete is kept (a retried or repeated unit redoes only what is missing).
         */
        public void execute(Unit unit, MetricsLog metricsLog, List<EvaluateStage.Target> students) throws IOException {
            molt.teacher.nd.Autograd.offForThisThread(); // a Spark task's thread computes as the driver's main thread
            Job job = job(unit.jobId());
            RunConfig config = unit.softmaxLayers() == null ? job.config()
                    : job.config().withStudent(job.config().student().withSoftmaxLayers(unit.softmaxLayers()));
            Path stageDir = job.dir(dir);
            Files.createDirectories(stageDir);
            StageContext ctx = new StageContext(config, job.stage(), dir, stageDir, data, metricsLog, stop,
                    previousWeights(job), header, teacherDir, job.id(), students);
            if (unit.kind() != Unit.Kind.TOPK_SHARD) {
                KeptTeacher.release();
            }
            switch (unit.kind()) {
                case STAGE -> {
                    LOG.info("stage {} ({})", job.id(), job.stage().type());
                    job.stage().runner().run(ctx, device);
                }
                case LAYER_GROUP -> LayerGroupTransfer.runGroup(ctx, device, unit.index());
                case TOPK_SHARD -> {
                    DataPrepareSpec spec = (DataPrepareSpec) job.stage();
                    Path shard = TopKTargets.shards(data).get(unit.index());
                    LlamaModel t = KeptTeacher.get(teacherDir, device, cfg.frozenPrecision());
                    long rows = TopKTargets.buildShard(t, shard, spec.topK(), cfg.data().batchSize(), true);
                    LOG.info("{}: top-{} teacher targets for {} sequences of {}", unit.name(), spec.topK(), rows,
                            shard.getFileName());
                }
                default -> throw new IllegalStateException("unknown unit kind " + unit.kind());
            }
        }

        /** The units a job splits into when a run is distributed (none: the job is one unit). */
        List<Unit> parts(Job job) {
            List<Unit> out = new ArrayList<>();
            if (job.stage() instanceof DataPrepareSpec d && d.topK() > 0 && cfg.pretrainStage() == null) {
                for (int i = 0; i < TopKTargets.shards(data).size(); i++) {
                    out.add(new Unit(job.id(), Unit.Kind.TOPK_SHARD, i, null));
                }
            } else if (job.stage() instanceof AttentionTransferSpec a && a.layerGroups() > 0) {
                for (int i = 0; i < a.layerGroups(); i++) {
                    out.add(new Unit(job.id(), Unit.Kind.LAYER_GROUP, i, null));
                }
            }
            return out;
        }

        private Job job(String id) {
            return jobs.stream().filter(j -> j.id().equals(id)).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("run " + dir + " has no stage '" + id + "'"));
        }

        /** The final weights of the last training stage before {@code job} in its chain, or null. */
        private Path previousWeights(Job job) {
            Path previous = null;
            for (Job j : jobs) {
                if (j == job) {
                    return previous;
                }
                if (j.chain().equals(job.chain()) && j.stage().trains()) {
                    previous = StageContext.finalWeights(j.dir(dir));
                }
            }
            throw new IllegalArgumentException("stage '" + job.id() + "' is not one of the run's");
        }
    }

    /**
     * {@code cfg} with its {@code auto} settings chosen for its teacher, and PyTorch's thread count set to the choice
     * (a config that names its threads gets them even when the engine started before).
     */
    public static RunConfig resolve(RunConfig cfg) {
        return resolve(cfg, Runtime.getRuntime().availableProcessors());
    }

    /**
     * As {@link #resolve(RunConfig)}, where {@code threads: auto} may use {@code cores} (a distributed task's share of
     * a machine, the same on every machine so that all resolve the config alike).
     */
    public static RunConfig resolve(RunConfig cfg, int cores) {
        molt.teacher.LlamaConfig teacher = Preflight.teacher(cfg);
        RunConfig r = cfg.resolveAuto(teacher, cores);
        if (cfg.threads() == RunConfig.AUTO_THREADS || !cfg.precision().equals(r.precision())) {
            LOG.info("auto settings for a {}-parameter teacher: threads {}, precision {}",
                    molt.teacher.LlamaWeights.parameterCount(teacher), r.threads(), r.precision());
        }
        molt.teacher.Threads.set(r.threads());
        if (molt.teacher.nd.NativeMemory.mode() != null) { // molt set the allocator at start: now for this teacher
            long params = molt.teacher.LlamaWeights.parameterCount(teacher);
            molt.teacher.Precision precision = molt.teacher.Precision.resolve(r.precision(), params);
            boolean bf16 = molt.teacher.nd.Bf16Products.usedFor(precision);
            molt.teacher.nd.NativeMemory.Mode mode = molt.teacher.nd.NativeMemory.modeFor(params, bf16);
            boolean change = mode != molt.teacher.nd.NativeMemory.mode(); // REUSE from the start: logged when left
            if (molt.teacher.nd.NativeMemory.configure(mode) && change) {
                LOG.info("allocator: {} (teacher {} {} parameters)", mode == molt.teacher.nd.NativeMemory.Mode.REUSE
                        ? "freed blocks reused within a step" : "large blocks returned to the system when freed",
                        mode == molt.teacher.nd.NativeMemory.Mode.REUSE ? "below" : "at or above",
                        String.format("%,d", bf16 ? molt.teacher.nd.NativeMemory.REUSE_BELOW_PARAMETERS_BF16
                                : molt.teacher.nd.NativeMemory.REUSE_BELOW_PARAMETERS));
            }
        }
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
    private static void truncateMetrics(Session run) throws IOException {
        for (Job job : run.jobs) {
            if (job.stage() instanceof TrainingSpec && !run.state.done(job.id())) {
                for (var part : TrainingLoop.resumeSteps(job.dir(run.dir), job.id(),
                        run.cfg.checkpoint().keepLast()).entrySet()) {
                    MetricsLog.truncateAfter(run.dir.resolve("metrics.jsonl"), part.getKey(), part.getValue());
                }
            }
        }
    }

    /**
     * Runs every job not done yet. Each student chain (the run's own, then each variant's) carries its latest weights
     * and export; returns the exported students by chain.
     *
     * <p>In process, the jobs run in order. Distributed, the jobs run in waves: the shared ones (teacher, data) first,
     * then the i-th stage of every chain side by side, then the stages that run last; a job that splits
     * ({@link Session#parts}: top-k targets per shard, attention transfer per layer group) has its parts dispatched
     * first and is then run here, where it finds them complete (and merges them).
     */
    private static Map<String, Path> runJobs(Session run, Dispatcher dispatcher) throws IOException {
        Map<String, Path> students = new LinkedHashMap<>();
        Map<String, List<Integer>> chosen = new LinkedHashMap<>(); // a chain's softmax layers once auto chose them
        try (MetricsLog metrics = new MetricsLog(run.dir.resolve("metrics.jsonl"))) {
            run.metrics = metrics;
            for (List<Job> wave : dispatcher.distributed() ? waves(run.jobs) : run.jobs.stream().map(List::of).toList()) {
                List<Job> todo = new ArrayList<>();
                for (Job job : wave) {
                    if (run.state.done(job.id())) {
                        LOG.info("stage {} ({}) is done: skipped", job.id(), job.stage().type());
                    } else {
                        todo.add(job);
                    }
                }
                runWave(run, dispatcher, todo, chosen, students);
                for (Job job : wave) {
                    if (job.stage() instanceof AttentionTransferSpec && job.config().student().autoSoftmax()
                            && !chosen.containsKey(job.chain())) {
                        chosen.put(job.chain(), choosePlan(run, job, job.dir(run.dir)).softmaxLayers());
                    } else if (job.stage() instanceof ExportSpec) {
                        students.put(job.chain(), ExportStage.studentDir(job.dir(run.dir)));
                    }
                }
            }
        } finally {
            run.metrics = null;
        }
        return students;
    }

    /**
     * Runs a wave's jobs, recording their states (running, then done, stopped or failed) and seconds: their parts
     * and the chains' stages through the dispatcher, shared and last stages here.
     */
    private static void runWave(Session run, Dispatcher dispatcher, List<Job> todo, Map<String, List<Integer>> chosen,
                                Map<String, Path> students) throws IOException {
        if (todo.isEmpty()) {
            return;
        }
        for (Job job : todo) {
            Files.createDirectories(job.dir(run.dir));
            run.state.set(job.id(), "running");
        }
        Map<String, Double> seconds = new LinkedHashMap<>();
        try {
            List<Unit> parts = new ArrayList<>();
            List<Unit> remote = new ArrayList<>();
            List<Job> here = new ArrayList<>();
            for (Job job : todo) {
                seconds.put(job.id(), 0.0);
                boolean local = !dispatcher.distributed() || !job.stage().perStudent();
                List<Unit> split = dispatcher.distributed() ? run.parts(job) : List.of();
                parts.addAll(split);
                if (local || !split.isEmpty()) {
                    here.add(job); // shared and last stages, and the merge of a split stage
                } else {
                    remote.add(new Unit(job.id(), Unit.Kind.STAGE, -1, chosen.get(job.chain())));
                }
            }
            List<Unit> dispatched = new ArrayList<>(parts);
            dispatched.addAll(remote);
            if (!dispatched.isEmpty() && dispatcher.distributed()) {
                LOG.info("dispatching {} units: {}", dispatched.size(),
                        dispatched.stream().map(Unit::name).toList());
            }
            double[] took = dispatched.isEmpty() ? new double[0] : dispatcher.run(run, dispatched);
            for (int i = 0; i < took.length; i++) {
                seconds.merge(dispatched.get(i).jobId(), took[i], Double::sum);
            }
            for (Job job : here) {
                long t0 = System.nanoTime();
                run.execute(new Unit(job.id(), Unit.Kind.STAGE, -1, chosen.get(job.chain())), run.metrics,
                        evaluationTargets(run, students));
                seconds.merge(job.id(), (System.nanoTime() - t0) / 1e9, Double::sum);
            }
        } catch (RuntimeException | IOException e) {
            for (Job job : todo) {
                run.state.set(job.id(), e instanceof StageStopped ? "stopped" : "failed");
            }
            throw e;
        }
        for (Job job : todo) {
            run.state.finish(job.id(), seconds.get(job.id()));
        }
    }

    /**
     * A distributed run's waves: each shared stage alone (teacher, data), then, for i = 0, 1, ..., the i-th stage of
     * every student chain (the run's own, then each variant's), then each stage that runs last alone.
     */
    static List<List<Job>> waves(List<Job> jobs) {
        List<List<Job>> out = new ArrayList<>();
        Map<String, List<Job>> chains = new LinkedHashMap<>();
        List<Job> last = new ArrayList<>();
        for (Job job : jobs) {
            if (job.stage().runsLast()) {
                last.add(job);
            } else if (!job.stage().perStudent()) {
                out.add(List.of(job));
            } else {
                chains.computeIfAbsent(job.chain(), c -> new ArrayList<>()).add(job);
            }
        }
        for (int i = 0; chains.values().stream().anyMatch(c -> c.size() > 0); i++) {
            List<Job> wave = new ArrayList<>();
            for (List<Job> chain : chains.values()) {
                if (!chain.isEmpty()) {
                    wave.add(chain.remove(0));
                }
            }
            out.add(wave);
        }
        for (Job job : last) {
            out.add(List.of(job));
        }
        return out;
    }

    /**
     * The softmax layers of a chain whose student has {@code softmax_layers: auto}: the choice stored in run.json, or,
     * the first time, the one its attention transfer's per-layer errors make (then stored).
     */
    private static HybridPlan.Choice choosePlan(Session run, Job job, Path stageDir) throws IOException {
        HybridPlan.Choice stored = run.state.plan(job.chain());
        if (stored != null) {
            LOG.info("{}: softmax attention kept in layers {} (chosen by {}, stored in run.json)", job.chain(),
                    stored.softmaxLayers(), stored.measuredBy());
            return stored;
        }
        Path result = stageDir.resolve("result.json");
        HybridPlan.Choice c = HybridPlan.choose(job.config().student(), JsonFiles.readObject(result), job.id(), result);
        run.state.setPlan(job.chain(), c);
        LOG.info("{}: softmax attention kept in layers {}: the {} largest relative attention-transfer errors of {}",
                job.chain(), c.softmaxLayers(), c.softmaxLayers().size() - job.config().student().softmaxLayers().size(),
                c.scores());
        return c;
    }

    private static void writeReport(Session run, Map<String, Path> students) throws IOException {
        ObjectNode report = JSON.createObjectNode();
        report.put("name", run.cfg.name());
        report.put("teacher", run.teacherDir.toAbsolutePath().normalize().toString());
        Path student = students.get(MAIN);
        report.put("student", student == null ? null : student.toAbsolutePath().normalize().toString());
        ObjectNode variants = report.putObject("variants");
        for (RunConfig.Variant v : run.cfg.variants()) {
            Path vs = students.get(v.name());
            variants.putObject(v.name()).put("description", v.description())
                    .put("student", vs == null ? null : vs.toAbsolutePath().normalize().toString());
        }
        if (!run.state.plans().isEmpty()) {
            report.set("plans", run.state.plans().deepCopy()); // softmax_layers: auto, per chain
        }
        ObjectNode stages = report.putObject("stages");
        for (Job job : run.jobs) {
            Path result = job.dir(run.dir).resolve("result.json");
            ObjectNode n = stages.putObject(job.id());
            n.put("type", job.stage().type());
            n.put("seconds", run.state.seconds(job.id()));
            if (Files.isRegularFile(result)) {
                n.set("result", JsonFiles.readObject(result));
            }
        }
        AtomicFiles.writeString(run.dir.resolve("report.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(report));
        molt.pipeline.report.RunReport.write(run.dir);
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
            for (StageSpec s : vc.stages()) { // the variant's own settings where it overrides a stage
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
    private static List<EvaluateStage.Target> evaluationTargets(Session run, Map<String, Path> students) {
        RunConfig cfg = run.cfg;
        List<EvaluateStage.Target> out = new ArrayList<>();
        for (Map.Entry<String, Path> e : students.entrySet()) {
            String chain = e.getKey();
            RunConfig.Variant variant = cfg.variants().stream().filter(v -> v.name().equals(chain)).findFirst()
                    .orElse(null);
            RunConfig.Student st = variant == null ? cfg.student() : variant.student();
            String description = variant == null || variant.description().isEmpty() ? st.mixer() : variant.description();
            List<EvaluateStage.StageRecord> made = new ArrayList<>();
            for (Job j : run.jobs) {
                if (j.chain().equals(chain) && j.stage().trains()) {
                    made.add(new EvaluateStage.StageRecord(j.stage().name(), j.dir(run.dir),
                            run.state.seconds(j.id())));
                }
            }
            out.add(new EvaluateStage.Target(chain, description, e.getValue(), made));
        }
        return out;
    }
}
