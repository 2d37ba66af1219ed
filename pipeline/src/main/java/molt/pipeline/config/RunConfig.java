package molt.pipeline.config;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import molt.student.StudentPlan;
import molt.student.lora.LoraConfig;
import molt.student.mixer.MixerRegistry;
import molt.student.mixer.MixerSettings;
import molt.teacher.InputException;

/**
 * A run, as its YAML config describes it, with every default filled in (LoLCATs' values). Built by
 * {@link ConfigLoader}; {@link #toJson} is the canonical resolved form written into run directories and
 * checkpoints.
 */
public record RunConfig(String name, Path outputDir, long seed, String device, int threads, String precision,
                        Checkpointing checkpoint,
                        Path teacher, Path teacherCache, Data data, Student student, Lora lora, List<StageSpec> stages,
                        List<Variant> variants) {

    /**
     * Another student distilled in the same run, for ablations and controls: the run's student and LoRA settings
     * with some changed, and some training stages skipped; everything else (teacher, data, budgets, seeds) is the
     * run's own, so only what the variant names differs.
     */
    public record Variant(String name, String description, Student student, Lora lora, List<String> skip,
                          List<StageSpec> stages) {
        /** A variant with the run's stages as they are. */
        public Variant(String name, String description, Student student, Lora lora, List<String> skip) {
            this(name, description, student, lora, skip, null);
        }

        /** Its stages: the run's, with the settings the variant overrides ({@code stages:} in its YAML). */
        public List<StageSpec> stagesOf(RunConfig run) {
            return stages == null ? run.stages() : stages;
        }

        /** The stages whose settings the variant overrides, in the run's order (empty when it overrides none). */
        public List<StageSpec> overrides(RunConfig run) {
            List<StageSpec> own = stagesOf(run);
            List<StageSpec> out = new ArrayList<>();
            for (int i = 0; i < own.size(); i++) {
                if (!own.get(i).equals(run.stages().get(i))) {
                    out.add(own.get(i));
                }
            }
            return out;
        }
    }

    /** The names no variant may take: the evaluation's rows for the teacher and the run's own student. */
    public static final Set<String> RESERVED_NAMES = Set.of("teacher", "student");

    /** The config a variant's stages see: this run's, with the variant's student, LoRA and stage settings. */
    public RunConfig forVariant(Variant v) {
        return new RunConfig(name, outputDir, seed, device, threads, precision, checkpoint, teacher, teacherCache, data,
                v.student(), v.lora(), v.stagesOf(this), List.of());
    }

    /** {@code threads} before {@link #resolveAuto}: chosen by the teacher's size. */
    public static final int AUTO_THREADS = 0;
    /**
     * From this many teacher parameters up, {@code threads: auto} uses every core: below it a training step is
     * small-op bound and one thread keeps resumed runs byte-identical (see docs/BENCHMARKS.md).
     */
    public static final long AUTO_ALL_CORES_PARAMETERS = 50_000_000L;

    /**
     * This config with {@code threads: auto} and {@code precision: auto} chosen for a teacher of this architecture
     * (idempotent: a resolved config stays as it is). The choices are what config.resolved.json records.
     */
    public RunConfig resolveAuto(molt.teacher.LlamaConfig teacherConfig) {
        return resolveAuto(teacherConfig, Runtime.getRuntime().availableProcessors());
    }

    /** As {@link #resolveAuto(molt.teacher.LlamaConfig)}, where "every core" is {@code cores} (a task's share). */
    public RunConfig resolveAuto(molt.teacher.LlamaConfig teacherConfig, int cores) {
        long params = molt.teacher.LlamaWeights.parameterCount(teacherConfig);
        int t = threads != AUTO_THREADS ? threads : params >= AUTO_ALL_CORES_PARAMETERS ? cores : 1;
        String p = molt.teacher.Precision.resolve(precision, params).setting();
        return new RunConfig(name, outputDir, seed, device, t, p, checkpoint, teacher, teacherCache, data, student, lora,
                stages, variants);
    }

    /** The frozen weights' precision; {@link #resolveAuto} first. */
    public molt.teacher.Precision frozenPrecision() {
        if (precision.equals("auto")) {
            throw new IllegalStateException("precision auto is not resolved yet");
        }
        return molt.teacher.Precision.resolve(precision, 0);
    }

    /** How often training stages checkpoint and how many checkpoints they keep (plus the best). */
    public record Checkpointing(int everySteps, int keepLast) {
    }

    /** The training data: a source prepared with the teacher's tokenizer into the run directory. */
    public record Data(String source, String column, String promptColumn, String responseColumn, int seqLen,
                       double valFraction, long seed, int rowsPerShard, int batchSize) {
    }

    /**
     * The student's plan and mixer settings. {@code origin} is where the section was written ({@code file:line:
     * student}), so a plan that does not fit the teacher, known only once its config is read, names the config.
     * {@code softmaxBudget} is null unless {@code softmax_layers: auto}: then the layers that keep softmax attention
     * are chosen after the chain's first attention transfer ({@link molt.pipeline.run.HybridPlan}), and until then
     * the plan linearizes every layer not named in {@code layers}.
     */
    public record Student(String mixer, List<Integer> softmaxLayers, Map<Integer, String> layers, MixerSettings settings,
                          String origin, Double softmaxBudget) {
        public Student(String mixer, List<Integer> softmaxLayers, Map<Integer, String> layers, MixerSettings settings,
                       String origin) {
            this(mixer, softmaxLayers, layers, settings, origin, null);
        }

        public StudentPlan plan(int numLayers) {
            try {
                return StudentPlan.of(numLayers, mixer, new HashSet<>(softmaxLayers), layers);
            } catch (InputException e) {
                throw new InputException(origin + ": " + e.getMessage());
            }
        }

        /** True for {@code softmax_layers: auto}. */
        public boolean autoSoftmax() {
            return softmaxBudget != null;
        }

        /**
         * How many of {@code mixerLayers} keep softmax under {@code softmax_budget}: a count (>= 1), or a fraction
         * (below 1) of the mixer layers, rounded, at least one.
         */
        public int softmaxCount(int mixerLayers) {
            return softmaxBudget >= 1 ? (int) Math.round(softmaxBudget)
                    : (int) Math.max(1, Math.round(softmaxBudget * mixerLayers));
        }

        /** This student with {@code chosen} layers keeping softmax attention (the choice of {@code auto} made). */
        public Student withSoftmaxLayers(List<Integer> chosen) {
            return new Student(mixer, List.copyOf(chosen), layers, settings, origin, null);
        }
    }

    /** This config with another student (a chain's student once softmax_layers: auto has chosen). */
    public RunConfig withStudent(Student s) {
        return new RunConfig(name, outputDir, seed, device, threads, precision, checkpoint, teacher, teacherCache, data,
                s, lora, stages, variants);
    }

    /** LoRA for the fine-tuning stage. */
    public record Lora(int rank, double alpha, double dropout, List<String> targets) {
        public LoraConfig toConfig() {
            return new LoraConfig(rank, alpha, dropout, targets);
        }
    }

    /** The pretraining stage, if any (it comes first, after data preparation: every other stage uses its teacher). */
    public TeacherPretrainSpec pretrainStage() {
        return stages.stream().filter(TeacherPretrainSpec.class::isInstance).map(TeacherPretrainSpec.class::cast)
                .findFirst().orElse(null);
    }

    static RunConfig bind(Binder b, String defaultName) {
        String name = b.str("name", defaultName);
        Path out = Path.of(b.str("output_dir", "runs/" + name));
        long seed = b.integer("seed", 0, 0, Long.MAX_VALUE);
        String device = b.str("device", "cpu");
        if (!device.matches("auto|cpu|gpu|gpu:\\d+")) {
            throw b.error("device", "expected auto, cpu, gpu or gpu:N, found '" + device + "'");
        }
        // PyTorch's multi-threaded CPU kernels can differ in the last bits between processes; one thread makes a
        // killed-and-resumed run byte-identical to an uninterrupted one.
        // auto: one thread for small teachers, every core from AUTO_ALL_CORES_PARAMETERS up (resolveAuto).
        int threads = "auto".equals(b.str("threads", "auto")) ? AUTO_THREADS : (int) b.integer("threads", 1, 1, 4096);
        String precision = b.str("precision", "auto").trim().toLowerCase(java.util.Locale.ROOT);
        if (!molt.teacher.Precision.isSetting(precision)) {
            throw b.error("precision", "expected f32, f16 or auto, found '" + precision + "'");
        }
        precision = precision.equals("auto") ? "auto" : molt.teacher.Precision.resolve(precision, 0).setting();
        b.str("extends", null); // consumed by the loader
        Binder cp = b.object("checkpoint");
        Checkpointing checkpoint = new Checkpointing((int) cp.integer("every_steps", 50, 1, Integer.MAX_VALUE),
                (int) cp.integer("keep_last", 2, 1, 1000));
        cp.finish();
        Binder t = b.object("teacher");
        String teacherPath = t.str("path", null);
        Path teacherCache = Path.of(t.str("cache_dir", "runs/.teachers"));
        t.finish();
        Data data = data(b.object("data"), seed);
        ObjectNode studentRaw = b.object("student").raw();
        ObjectNode loraRaw = b.object("lora").raw();
        Student student = student(b.object("student"));
        Lora lora = lora(b.object("lora"));
        List<ObjectNode> stagesRaw = b.objects("stages").stream().map(Binder::raw).toList();
        List<StageSpec> stages = stages(b);
        List<Variant> variants = variants(b.object("variants"), studentRaw, loraRaw, stages, stagesRaw);
        checkPretraining(b, stages, teacherPath);
        b.finish();
        return new RunConfig(name, out, seed, device, threads, precision, checkpoint,
                teacherPath == null ? null : Path.of(teacherPath),
                teacherCache, data, student, lora, stages, variants);
    }

    private static Data data(Binder d, long seed) {
        String promptColumn = d.str("prompt_column", null);
        String responseColumn = d.str("response_column", null);
        if ((promptColumn == null) != (responseColumn == null)) {
            throw d.error(promptColumn == null ? "prompt_column" : "response_column",
                    "prompt_column and response_column go together (instruction data)");
        }
        Data data = new Data(d.str("source", "europarl-en"), d.str("column", "text"), promptColumn, responseColumn,
                (int) d.integer("seq_len", 1024, 2, 1 << 20), d.number("val_fraction", 0.05, 0, 0.9, true),
                d.integer("seed", seed, 0, Long.MAX_VALUE), (int) d.integer("rows_per_shard", 4096, 1, 1 << 24),
                (int) d.integer("batch_size", 1, 1, 1 << 16));
        d.finish();
        return data;
    }

    private static List<StageSpec> stages(Binder b) {
        List<StageSpec> stages = new ArrayList<>();
        Set<String> names = new HashSet<>();
        List<Binder> binders = b.objects("stages");
        for (Binder s : binders) {
            StageSpec st = StageTypes.bind(s);
            if (!names.add(st.name())) {
                throw s.error("name", "duplicate stage name '" + st.name() + "'");
            }
            stages.add(st);
        }
        if (stages.isEmpty()) {
            throw new InputException(b.where("stages") + ": at least one stage is required");
        }
        checkOrder(binders, stages);
        return stages;
    }

    /**
     * Stages run in the order written, so an order that would report something untrained as the result is refused:
     * data_prepare and teacher_pretrain come before everything else, attention_transfer before lora_finetune, an
     * export after the last training stage of its chain, and an evaluate after an export.
     */
    private static void checkOrder(List<Binder> binders, List<StageSpec> stages) {
        int lastTraining = -1;
        int firstLora = -1;
        int firstExport = -1;
        int lastSetup = -1;
        for (int i = 0; i < stages.size(); i++) {
            StageSpec st = stages.get(i);
            if (st instanceof DataPrepareSpec || st instanceof TeacherPretrainSpec) {
                lastSetup = i;
            }
            lastTraining = st instanceof StudentTrainingSpec ? i : lastTraining;
            firstLora = st instanceof LoraFinetuneSpec && firstLora < 0 ? i : firstLora;
            firstExport = st instanceof ExportSpec && firstExport < 0 ? i : firstExport;
        }
        for (int i = 0; i < stages.size(); i++) {
            StageSpec st = stages.get(i);
            String problem = null;
            if (!(st instanceof DataPrepareSpec || st instanceof TeacherPretrainSpec) && i < lastSetup) {
                problem = "must come after the " + stages.get(lastSetup).type() + " stage '"
                        + stages.get(lastSetup).name() + "' (data_prepare and teacher_pretrain come first)";
            } else if (st instanceof AttentionTransferSpec && firstLora >= 0 && firstLora < i) {
                problem = "must come before the lora_finetune stage '" + stages.get(firstLora).name()
                        + "' (LoRA fine-tunes the student that attention transfer made)";
            } else if (st instanceof ExportSpec && i < lastTraining) {
                problem = "must come after the last training stage '" + stages.get(lastTraining).name()
                        + "' (it would export an unfinished student)";
            } else if (st instanceof EvaluateSpec && (firstExport < 0 || firstExport > i)) {
                problem = "must come after an export stage (it evaluates exported students)";
            }
            if (problem != null) {
                throw new InputException(binders.get(i).location() + ": " + st.type() + " stage '" + st.name()
                        + "' " + problem);
            }
        }
    }

    /** A teacher_pretrain stage comes first (after data_prepare) and makes the teacher; without one, teacher.path. */
    private static void checkPretraining(Binder b, List<StageSpec> stages, String teacherPath) {
        for (int i = 1; i < stages.size(); i++) {
            if (stages.get(i) instanceof TeacherPretrainSpec && !(stages.get(i - 1) instanceof DataPrepareSpec)) {
                throw new InputException(b.where("stages") + "[" + i + "]: teacher_pretrain must be the first stage");
            }
        }
        boolean pretrains = stages.stream().anyMatch(TeacherPretrainSpec.class::isInstance);
        if (pretrains == (teacherPath != null)) {
            throw new InputException(b.where("teacher") + ": " + (pretrains
                    ? "teacher.path must be absent when a teacher_pretrain stage makes the teacher"
                    : "teacher.path is required (or a first stage of type teacher_pretrain)"));
        }
    }

    private static List<Variant> variants(Binder vs, ObjectNode studentRaw, ObjectNode loraRaw,
                                          List<StageSpec> stages, List<ObjectNode> stagesRaw) {
        List<Variant> out = new ArrayList<>();
        for (java.util.Iterator<String> it = vs.raw().fieldNames(); it.hasNext(); ) {
            String vname = it.next();
            if (!vname.matches("[a-z0-9_]+") || RESERVED_NAMES.contains(vname)) {
                throw vs.error(vname, "a variant's name must be lowercase letters, digits and '_', and not one of "
                        + RESERVED_NAMES);
            }
            Binder v = vs.object(vname);
            String description = v.str("description", "");
            Student student = student(v.mergedOnto("student", studentRaw));
            Lora lora = lora(v.mergedOnto("lora", loraRaw));
            List<String> skip = v.strings("skip", List.of());
            for (String s : skip) {
                boolean trains = stages.stream().anyMatch(st -> st.name().equals(s) && st.trains());
                if (!trains) {
                    throw v.error("skip", "expected names of the run's attention_transfer or lora_finetune stages, found '"
                            + s + "'");
                }
            }
            List<StageSpec> own = variantStages(v.object("stages"), stages, stagesRaw, skip);
            v.finish();
            out.add(new Variant(vname, description, student, lora, List.copyOf(skip), own));
        }
        vs.finish();
        return out;
    }

    /**
     * A variant's {@code stages:} mapping, stage name -> settings merged over that stage's own (learning rate, tokens,
     * loss weights, train_mixers, ...): the run's stage list with those stages bound again, or null when it names
     * none. Only the run's training stages can be named, not ones the variant skips; name and type stay.
     */
    private static List<StageSpec> variantStages(Binder overrides, List<StageSpec> stages, List<ObjectNode> stagesRaw,
                                                 List<String> skip) {
        List<String> names = new ArrayList<>();
        overrides.raw().fieldNames().forEachRemaining(names::add);
        if (names.isEmpty()) {
            overrides.finish();
            return null;
        }
        List<StageSpec> own = new ArrayList<>(stages);
        for (String stageName : names) {
            int i = 0;
            while (i < stages.size() && !stages.get(i).name().equals(stageName)) {
                i++;
            }
            if (i == stages.size() || !stages.get(i).trains() || stages.get(i) instanceof TeacherPretrainSpec) {
                throw overrides.error(stageName, "expected the name of one of the run's attention_transfer or "
                        + "lora_finetune stages, found '" + stageName + "'");
            }
            if (skip.contains(stageName)) {
                throw overrides.error(stageName, "the variant skips stage '" + stageName + "': nothing to override");
            }
            Binder merged = overrides.mergedOnto(stageName, stagesRaw.get(i));
            for (String fixed : List.of("name", "type")) {
                if (overrides.object(stageName).raw().has(fixed)) {
                    throw overrides.object(stageName).error(fixed, "a variant overrides a stage's settings, not its "
                            + fixed);
                }
            }
            own.set(i, StageTypes.bind(merged));
        }
        overrides.finish();
        return List.copyOf(own);
    }

    private static Lora lora(Binder l) {
        List<String> targets = l.strings("targets", List.of("q", "k", "v", "o"));
        for (String target : targets) {
            if (!LoraConfig.KNOWN_TARGETS.contains(target)) {
                throw l.error("targets", "unknown target '" + target + "' (expected some of " + molt.teacher.Projection.shortNames()
                        + ")");
            }
        }
        Lora lora = new Lora((int) l.integer("rank", 8, 1, 4096), l.number("alpha", 16, 0, 1e6, false),
                l.number("dropout", 0, 0, 0.99, true), targets);
        l.finish();
        return lora;
    }

    private static Student student(Binder s) {
        Set<String> mixers = new java.util.TreeSet<>(MixerRegistry.names());
        Set<String> choices = new java.util.TreeSet<>(mixers);
        choices.add(MixerRegistry.SOFTMAX); // every layer keeps softmax: the teacher itself (with LoRA, a control)
        String mixer = s.choice("mixer", "hedgehog_window", choices);
        boolean auto = s.has("softmax_layers") && s.raw().get("softmax_layers").isTextual();
        if (auto && !s.str("softmax_layers", "").equals("auto")) {
            throw s.error("softmax_layers", "expected a list of layer indices or auto, found '"
                    + s.raw().get("softmax_layers").asText() + "'");
        }
        List<Integer> softmax = auto ? List.of() : s.ints("softmax_layers");
        for (int i : softmax) {
            if (i < 0) {
                throw s.error("softmax_layers", "expected layer indices >= 0, found " + i);
            }
        }
        Double budget = null;
        if (auto) {
            budget = s.number("softmax_budget", 1, 0, 1 << 20, false);
            if (budget >= 1 && budget != Math.rint(budget)) {
                throw s.error("softmax_budget", "expected a layer count (an integer >= 1) or a fraction below 1, found "
                        + budget);
            }
        } else if (s.has("softmax_budget")) {
            throw s.error("softmax_budget", "applies only with softmax_layers: auto");
        }
        Map<Integer, String> layers = new LinkedHashMap<>();
        Binder l = s.object("layers");
        for (java.util.Iterator<String> it = l.raw().fieldNames(); it.hasNext(); ) {
            String k = it.next();
            int idx;
            try {
                idx = Integer.parseInt(k);
            } catch (NumberFormatException e) {
                throw l.error(k, "expected a layer index (an integer >= 0) as key");
            }
            if (idx < 0) {
                throw l.error(k, "expected a layer index (an integer >= 0) as key");
            }
            Set<String> allowed = new java.util.TreeSet<>(mixers);
            allowed.add(MixerRegistry.SOFTMAX);
            layers.put(idx, l.choice(k, null, allowed));
        }
        l.finish();
        int window = (int) s.integer("window", 64, 1, 1 << 20);
        MixerSettings settings = new MixerSettings((int) s.integer("feature_dim", 64, 1, 1 << 16), window,
                (int) s.integer("chunk_size", Math.max(64, window), 1, 1 << 20),
                s.number("window_factor_init", MixerRegistry.windowFactorInit(mixer), -1e3, 1e3, true));
        if (settings.chunkSize() < settings.window()) {
            throw s.error("chunk_size", "must be >= window (" + settings.window() + "), found " + settings.chunkSize());
        }
        s.finish();
        return new Student(mixer, softmax, layers, settings, s.location(), budget);
    }

    /** The canonical resolved form: every setting, defaults included, in schema order. */
    public ObjectNode toJson() {
        ObjectMapper m = new ObjectMapper();
        ObjectNode r = m.createObjectNode();
        r.put("name", name);
        r.put("output_dir", outputDir.toString());
        r.put("seed", seed);
        r.put("device", device);
        if (threads == AUTO_THREADS) {
            r.put("threads", "auto");
        } else {
            r.put("threads", threads);
        }
        r.put("precision", precision);
        r.putObject("checkpoint").put("every_steps", checkpoint.everySteps()).put("keep_last", checkpoint.keepLast());
        r.putObject("teacher").put("path", teacher == null ? null : teacher.toString())
                .put("cache_dir", teacherCache.toString());
        r.putObject("data").put("source", data.source()).put("column", data.column())
                .put("prompt_column", data.promptColumn()).put("response_column", data.responseColumn())
                .put("seq_len", data.seqLen())
                .put("val_fraction", data.valFraction()).put("seed", data.seed())
                .put("rows_per_shard", data.rowsPerShard()).put("batch_size", data.batchSize());
        student(r.putObject("student"), student);
        lora(r.putObject("lora"), lora);
        stages(r.putArray("stages"));
        ObjectNode vs = r.putObject("variants");
        for (Variant v : variants) {
            ObjectNode n = vs.putObject(v.name()).put("description", v.description());
            student(n.putObject("student"), v.student());
            lora(n.putObject("lora"), v.lora());
            ArrayNode skip = n.putArray("skip");
            v.skip().forEach(skip::add);
            List<StageSpec> overridden = v.overrides(this);
            if (!overridden.isEmpty()) { // only then: older resolved configs stay as they were
                ObjectNode own = n.putObject("stages");
                for (StageSpec st : overridden) {
                    st.toJson(own.putObject(st.name()).put("name", st.name()).put("type", st.type()));
                }
            }
        }
        return r;
    }

    private static void student(ObjectNode st, Student student) {
        st.put("mixer", student.mixer());
        if (student.autoSoftmax()) {
            st.put("softmax_layers", "auto").put("softmax_budget", student.softmaxBudget());
        } else {
            ArrayNode sl = st.putArray("softmax_layers");
            student.softmaxLayers().forEach(sl::add);
        }
        ObjectNode layers = st.putObject("layers");
        student.layers().forEach((k, v) -> layers.put(String.valueOf(k), v));
        MixerSettings ms = student.settings();
        st.put("feature_dim", ms.featureDim()).put("window", ms.window()).put("chunk_size", ms.chunkSize())
                .put("window_factor_init", ms.windowFactorInit());
    }

    private static void lora(ObjectNode l, Lora lora) {
        l.put("rank", lora.rank()).put("alpha", lora.alpha()).put("dropout", lora.dropout());
        ArrayNode lt = l.putArray("targets");
        lora.targets().forEach(lt::add);
    }

    private void stages(ArrayNode ss) {
        for (StageSpec s : stages) {
            s.toJson(ss.addObject().put("name", s.name()).put("type", s.type()));
        }
    }
}
