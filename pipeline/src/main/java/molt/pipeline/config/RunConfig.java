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
public record RunConfig(String name, Path outputDir, long seed, String device, int threads, Checkpointing checkpoint,
                        Path teacher, Path teacherCache, Data data, Student student, Lora lora, List<Stage> stages,
                        List<Variant> variants) {

    /**
     * Another student distilled in the same run, for ablations and controls: the run's student and LoRA settings
     * with some changed, and some training stages skipped; everything else (teacher, data, budgets, seeds) is the
     * run's own, so only what the variant names differs.
     */
    public record Variant(String name, String description, Student student, Lora lora, List<String> skip) {
    }

    /** The names no variant may take: the evaluation's rows for the teacher and the run's own student. */
    public static final Set<String> RESERVED_NAMES = Set.of("teacher", "student");

    /** The config a variant's stages see: this run's, with the variant's student and LoRA settings. */
    public RunConfig forVariant(Variant v) {
        return new RunConfig(name, outputDir, seed, device, threads, checkpoint, teacher, teacherCache, data,
                v.student(), v.lora(), stages, List.of());
    }

    /** Whether a stage belongs to each student's chain (run once per variant) rather than to the whole run. */
    public static boolean perStudent(Stage s) {
        return s.trains() || s.type().equals(EXPORT);
    }

    /** How often training stages checkpoint and how many checkpoints they keep (plus the best). */
    public record Checkpointing(int everySteps, int keepLast) {
    }

    /** The training data: a source prepared with the teacher's tokenizer into the run directory. */
    public record Data(String source, String column, String promptColumn, String responseColumn, int seqLen,
                       double valFraction, long seed, int rowsPerShard, int batchSize) {
    }

    /** The student's plan and mixer settings. */
    public record Student(String mixer, List<Integer> softmaxLayers, Map<Integer, String> layers, MixerSettings settings) {
        public StudentPlan plan(int numLayers) {
            return StudentPlan.of(numLayers, mixer, new HashSet<>(softmaxLayers), layers);
        }
    }

    /** LoRA for the fine-tuning stage. */
    public record Lora(int rank, double alpha, double dropout, List<String> targets) {
        public LoraConfig toConfig() {
            return new LoraConfig(rank, alpha, dropout, targets);
        }
    }

    /**
     * One stage. Training stages run to a token budget ({@code tokens}); fields a type does not use keep their
     * defaults and are rejected when set.
     */
    public record Stage(String name, String type, long tokens, double lr, double weightDecay, int gradAccum,
                        double clipNorm, double mseWeight, double attentionCeWeight, double ceWeight, double klWeight,
                        double temperature, int valEvery, int valBatches, String scheduler, double plateauFactor,
                        int plateauPatience, int warmupSteps, double minLrRatio, int logEvery, boolean merged,
                        String dtype, String klSource, int topK,
                        Eval eval, Pretrain pretrain) {

        public boolean trains() {
            return type.equals(ATTENTION_TRANSFER) || type.equals(LORA_FINETUNE);
        }
    }

    public static final String ATTENTION_TRANSFER = "attention_transfer";
    public static final String LORA_FINETUNE = "lora_finetune";
    public static final String EXPORT = "export";
    public static final String EVALUATE = "evaluate";
    public static final String TEACHER_PRETRAIN = "teacher_pretrain";
    public static final String DATA_PREPARE = "data_prepare";
    public static final Set<String> STAGE_TYPES = Set.of(DATA_PREPARE, TEACHER_PRETRAIN, ATTENTION_TRANSFER,
            LORA_FINETUNE, EXPORT, EVALUATE);

    /** The architecture a {@code teacher_pretrain} stage trains from scratch (byte vocabulary, untied head). */
    public record Pretrain(int hidden, int layers, int heads, int kvHeads, int intermediate, double ropeTheta,
                           double copyFraction, double copyScrambled, String copyScrambleFrom, int copyMinSpan,
                           int copyMaxSpan, Repeats repeats) {
    }

    /**
     * The induction curriculum of {@code teacher_pretrain} (see molt.data.RepeatedBlocks): {@code warmupSteps}
     * optimizer steps of {@code sequences} sequences of {@code seqLen} tokens, each a random block of
     * {@code minPeriod..maxPeriod} lowercase letters repeated, before any corpus step; then, when {@code every > 0},
     * one more such step after every {@code every} corpus steps, at the run's sequence length (as many sequences as
     * hold a warmup step's tokens, periods up to half the length).
     */
    public record Repeats(int warmupSteps, int seqLen, int sequences, int minPeriod, int maxPeriod, int every) {
        public boolean enabled() {
            return warmupSteps > 0 || every > 0;
        }
    }

    /** The pretraining stage, if any (it comes first, after data preparation: every other stage uses its teacher). */
    public Stage pretrainStage() {
        return stages.stream().filter(s -> s.type().equals(TEACHER_PRETRAIN)).findFirst().orElse(null);
    }

    /** Settings of an {@code evaluate} stage. */
    public record Eval(int sequences, List<Integer> distances, int probes, List<Integer> contexts) {
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
        int threads = (int) b.integer("threads", 1, 1, 4096);
        b.str("extends", null); // consumed by the loader
        Binder cp = b.object("checkpoint");
        Checkpointing checkpoint = new Checkpointing((int) cp.integer("every_steps", 50, 1, Integer.MAX_VALUE),
                (int) cp.integer("keep_last", 2, 1, 1000));
        cp.finish();
        Binder t = b.object("teacher");
        String teacherPath = t.str("path", null);
        Path teacherCache = Path.of(t.str("cache_dir", "runs/.teachers"));
        t.finish();
        Binder d = b.object("data");
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
        ObjectNode studentRaw = b.object("student").raw();
        ObjectNode loraRaw = b.object("lora").raw();
        Student student = student(b.object("student"));
        Lora lora = lora(b.object("lora"));
        List<Stage> stages = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (Binder s : b.objects("stages")) {
            Stage st = stage(s);
            if (!names.add(st.name())) {
                throw s.error("name", "duplicate stage name '" + st.name() + "'");
            }
            stages.add(st);
        }
        if (stages.isEmpty()) {
            throw new InputException(b.where("stages") + ": at least one stage is required");
        }
        List<Variant> variants = variants(b.object("variants"), studentRaw, loraRaw, stages);
        for (int i = 1; i < stages.size(); i++) {
            if (stages.get(i).type().equals(TEACHER_PRETRAIN) && !stages.get(i - 1).type().equals(DATA_PREPARE)) {
                throw new InputException(b.where("stages") + "[" + i + "]: teacher_pretrain must be the first stage");
            }
        }
        boolean pretrains = stages.stream().anyMatch(st -> st.type().equals(TEACHER_PRETRAIN));
        if (pretrains == (teacherPath != null)) {
            throw new InputException(b.where("teacher") + ": " + (pretrains
                    ? "teacher.path must be absent when a teacher_pretrain stage makes the teacher"
                    : "teacher.path is required (or a first stage of type teacher_pretrain)"));
        }
        b.finish();
        return new RunConfig(name, out, seed, device, threads, checkpoint, teacherPath == null ? null : Path.of(teacherPath),
                teacherCache, data, student, lora, stages, variants);
    }

    private static List<Variant> variants(Binder vs, ObjectNode studentRaw, ObjectNode loraRaw, List<Stage> stages) {
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
            v.finish();
            out.add(new Variant(vname, description, student, lora, List.copyOf(skip)));
        }
        vs.finish();
        return out;
    }

    private static Lora lora(Binder l) {
        List<String> targets = l.strings("targets", List.of("q", "k", "v", "o"));
        for (String target : targets) {
            if (!LoraConfig.KNOWN_TARGETS.contains(target)) {
                throw l.error("targets", "unknown target '" + target + "' (expected some of " + LoraConfig.KNOWN_TARGETS
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
        List<Integer> softmax = s.ints("softmax_layers");
        Map<Integer, String> layers = new LinkedHashMap<>();
        Binder l = s.object("layers");
        for (java.util.Iterator<String> it = l.raw().fieldNames(); it.hasNext(); ) {
            String k = it.next();
            int idx;
            try {
                idx = Integer.parseInt(k);
            } catch (NumberFormatException e) {
                throw l.error(k, "expected a layer index as key");
            }
            Set<String> allowed = new java.util.TreeSet<>(mixers);
            allowed.add(MixerRegistry.SOFTMAX);
            layers.put(idx, l.choice(k, null, allowed));
        }
        l.finish();
        int window = (int) s.integer("window", 64, 1, 1 << 20);
        MixerSettings settings = new MixerSettings((int) s.integer("feature_dim", 64, 1, 1 << 16), window,
                (int) s.integer("chunk_size", Math.max(64, window), 1, 1 << 20),
                s.number("window_factor_init", -2.197, -1e3, 1e3, true));
        if (settings.chunkSize() < settings.window()) {
            throw s.error("chunk_size", "must be >= window (" + settings.window() + "), found " + settings.chunkSize());
        }
        s.finish();
        return new Student(mixer, softmax, layers, settings);
    }

    private static Stage stage(Binder s) {
        String name = s.requiredStr("name");
        String type = s.choice("type", null, STAGE_TYPES);
        if (type == null) {
            throw s.error("type", "is required (one of " + STAGE_TYPES + ")");
        }
        boolean at = type.equals(ATTENTION_TRANSFER);
        boolean lf = type.equals(LORA_FINETUNE);
        boolean pt = type.equals(TEACHER_PRETRAIN);
        long tokens = 0;
        double lr = 0;
        double wd = 0;
        int accum = 1;
        double clip = 0;
        double mse = 0;
        double attCe = 0;
        double ce = 0;
        double kl = 0;
        double temp = 1;
        int valEvery = 0;
        int valBatches = 0;
        String sched = "constant";
        double factor = 0.5;
        int patience = 2;
        int warmup = 0;
        double minLrRatio = 0.1;
        int logEvery = 10;
        boolean merged = true;
        String dtype = null;
        String klSource = "online";
        int topK = 16;
        if (at || lf || pt) {
            tokens = s.integer("tokens", -1, 1, Long.MAX_VALUE);
            if (tokens < 0) {
                throw s.error("tokens", "is required: the stage's token budget");
            }
            lr = s.number("lr", at ? 1e-2 : pt ? 3e-3 : 1e-4, 0, 10, false);
            wd = s.number("weight_decay", pt ? 0.01 : 0.0, 0, 10, true);
            clip = s.number("clip_norm", 1.0, 0, 1e6, true);
            valEvery = (int) s.integer("val_every", 50, 1, Integer.MAX_VALUE);
            valBatches = (int) s.integer("val_batches", 4, 1, 1 << 20);
            sched = s.choice("scheduler", at ? "plateau" : "constant", Set.of("plateau", "constant", "cosine"));
            // cosine: linear warmup over warmup_steps, then a cosine from lr down to min_lr_ratio * lr at the end.
            warmup = (int) s.integer("warmup_steps", 0, 0, Integer.MAX_VALUE);
            minLrRatio = s.number("min_lr_ratio", 0.1, 0, 1, true);
            factor = s.number("plateau_factor", 0.5, 0, 1, false);
            patience = (int) s.integer("plateau_patience", 2, 0, 1 << 20);
            logEvery = (int) s.integer("log_every", 10, 1, 1 << 20);
        }
        if (at) {
            mse = s.number("mse_weight", 1000, 0, 1e12, true);
            attCe = s.number("attention_ce_weight", 0, 0, 1e12, true);
            if (attCe > 0) {
                // The chunked mixers never form the T x T attention matrix this loss needs.
                throw s.error("attention_ce_weight", "cross-entropy on attention weights is not supported yet; use 0");
            }
        }
        if (lf) {
            accum = (int) s.integer("grad_accum", 8, 1, 1 << 16);
            ce = s.number("ce_weight", 1, 0, 1e6, true);
            kl = s.number("kl_weight", 0, 0, 1e6, true);
            temp = s.number("temperature", 1, 0, 1e3, false);
            if (ce == 0 && kl == 0) {
                throw s.error("ce_weight", "ce_weight and kl_weight cannot both be 0");
            }
            klSource = s.choice("kl_source", "online", Set.of("online", "cache"));
            topK = (int) s.integer("top_k", 16, 1, 1 << 20);
            if (klSource.equals("cache") && temp != 1) {
                throw s.error("temperature", "the top-k cache holds temperature-1 log-probabilities; use 1 with kl_source: cache");
            }
        }
        if (type.equals(DATA_PREPARE)) {
            topK = (int) s.integer("top_k", 0, 0, 1 << 20); // 0: no teacher targets
        }
        if (type.equals(EXPORT)) {
            merged = s.bool("merged", true);
            dtype = s.choice("dtype", null, Set.of("F32", "F16", "BF16"));
        }
        Pretrain pretrain = null;
        if (pt) {
            int hidden = (int) s.integer("hidden", 128, 8, 1 << 16);
            int heads = (int) s.integer("heads", 4, 1, 1024);
            if (hidden % heads != 0 || (hidden / heads) % 2 != 0) {
                throw s.error("heads", "hidden (" + hidden + ") must split into heads of even size, found " + heads);
            }
            int kv = (int) s.integer("kv_heads", heads, 1, heads);
            if (heads % kv != 0) {
                throw s.error("kv_heads", "must divide heads (" + heads + "), found " + kv);
            }
            int layers = (int) s.integer("layers", 4, 1, 1024);
            int intermediate = (int) s.integer("intermediate", hidden * 8 / 3, 1, 1 << 20);
            double ropeTheta = s.number("rope_theta", 10000, 1, 1e9, true);
            // Copy augmentation (see molt.data.SpanCopy): the fraction of training sequences that repeat a span of
            // their own text, and the span lengths in tokens.
            double copyFraction = s.number("copy_fraction", 0, 0, 1, true);
            double copyScrambled = s.number("copy_scrambled", 0, 0, 1, true);
            String scrambleFrom = s.choice("copy_scramble_from", "row", Set.of("row", "letters"));
            int copyMin = (int) s.integer("copy_min_span", 8, 1, 1 << 20);
            int copyMax = (int) s.integer("copy_max_span", 32, 1, 1 << 20);
            if (copyMax < copyMin) {
                throw s.error("copy_max_span", "must be >= copy_min_span (" + copyMin + "), found " + copyMax);
            }
            // The induction curriculum (repeated random blocks), off unless asked for.
            int repWarm = (int) s.integer("repeat_warmup_steps", 0, 0, Integer.MAX_VALUE);
            int repLen = (int) s.integer("repeat_seq_len", 96, 2, 1 << 20);
            int repSeqs = (int) s.integer("repeat_sequences", 8, 1, 1 << 16);
            int repMin = (int) s.integer("repeat_min_period", 6, 1, 1 << 20);
            int repMax = (int) s.integer("repeat_max_period", 48, 1, 1 << 20);
            int repEvery = (int) s.integer("repeat_every", 0, 0, Integer.MAX_VALUE);
            if (repMax < repMin) {
                throw s.error("repeat_max_period", "must be >= repeat_min_period (" + repMin + "), found " + repMax);
            }
            if (repMin >= repLen) {
                throw s.error("repeat_min_period", "must be shorter than repeat_seq_len (" + repLen + ") for a block "
                        + "to repeat, found " + repMin);
            }
            pretrain = new Pretrain(hidden, layers, heads, kv, intermediate, ropeTheta, copyFraction, copyScrambled,
                    scrambleFrom, copyMin, copyMax, new Repeats(repWarm, repLen, repSeqs, repMin, repMax, repEvery));
        }
        Eval eval = null;
        if (type.equals(EVALUATE)) {
            List<Integer> distances = s.has("distances") ? s.ints("distances") : List.of(64, 128, 256);
            List<Integer> contexts = s.has("contexts") ? s.ints("contexts") : List.of(256, 1024);
            if (distances.isEmpty() || distances.stream().anyMatch(d -> d < 16)) {
                throw s.error("distances", "expected a list of distances >= 16 tokens, found " + distances);
            }
            if (contexts.isEmpty() || contexts.stream().anyMatch(c -> c < 1)) {
                throw s.error("contexts", "expected a list of context lengths >= 1, found " + contexts);
            }
            eval = new Eval((int) s.integer("sequences", 8, 1, 1 << 20), distances,
                    (int) s.integer("probes", 4, 1, 1 << 16), contexts);
        }
        s.finish();
        return new Stage(name, type, tokens, lr, wd, accum, clip, mse, attCe, ce, kl, temp, valEvery, valBatches,
                sched, factor, patience, warmup, minLrRatio, logEvery, merged, dtype, klSource, topK, eval, pretrain);
    }

    /** The canonical resolved form: every setting, defaults included, in schema order. */
    public ObjectNode toJson() {
        ObjectMapper m = new ObjectMapper();
        ObjectNode r = m.createObjectNode();
        r.put("name", name);
        r.put("output_dir", outputDir.toString());
        r.put("seed", seed);
        r.put("device", device);
        r.put("threads", threads);
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
        }
        return r;
    }

    private static void student(ObjectNode st, Student student) {
        st.put("mixer", student.mixer());
        ArrayNode sl = st.putArray("softmax_layers");
        student.softmaxLayers().forEach(sl::add);
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
        for (Stage s : stages) {
            ObjectNode n = ss.addObject().put("name", s.name()).put("type", s.type());
            if (s.pretrain() != null) {
                RunConfig.Pretrain p = s.pretrain();
                n.put("hidden", p.hidden()).put("layers", p.layers()).put("heads", p.heads()).put("kv_heads", p.kvHeads())
                        .put("intermediate", p.intermediate()).put("rope_theta", p.ropeTheta())
                        .put("copy_fraction", p.copyFraction()).put("copy_scrambled", p.copyScrambled())
                        .put("copy_min_span", p.copyMinSpan()).put("copy_max_span", p.copyMaxSpan());
                if (!p.copyScrambleFrom().equals("row")) { // absent at the default: older cached teachers keep their key
                    n.put("copy_scramble_from", p.copyScrambleFrom());
                }
                Repeats r = p.repeats();
                if (r.enabled()) { // absent when off, so teachers cached before the curriculum existed keep their key
                    n.put("repeat_warmup_steps", r.warmupSteps()).put("repeat_seq_len", r.seqLen())
                            .put("repeat_sequences", r.sequences()).put("repeat_min_period", r.minPeriod())
                            .put("repeat_max_period", r.maxPeriod()).put("repeat_every", r.every());
                }
            }
            if (s.trains() || s.pretrain() != null) {
                n.put("tokens", s.tokens()).put("lr", s.lr()).put("weight_decay", s.weightDecay())
                        .put("clip_norm", s.clipNorm()).put("val_every", s.valEvery()).put("val_batches", s.valBatches())
                        .put("scheduler", s.scheduler()).put("plateau_factor", s.plateauFactor())
                        .put("plateau_patience", s.plateauPatience()).put("warmup_steps", s.warmupSteps())
                        .put("min_lr_ratio", s.minLrRatio()).put("log_every", s.logEvery());
            }
            if (s.type().equals(ATTENTION_TRANSFER)) {
                n.put("mse_weight", s.mseWeight()).put("attention_ce_weight", s.attentionCeWeight());
            }
            if (s.type().equals(LORA_FINETUNE)) {
                n.put("grad_accum", s.gradAccum()).put("ce_weight", s.ceWeight()).put("kl_weight", s.klWeight())
                        .put("temperature", s.temperature()).put("kl_source", s.klSource()).put("top_k", s.topK());
            }
            if (s.type().equals(DATA_PREPARE)) {
                n.put("top_k", s.topK());
            }
            if (s.type().equals(EVALUATE)) {
                n.put("sequences", s.eval().sequences()).put("probes", s.eval().probes());
                ArrayNode d = n.putArray("distances");
                s.eval().distances().forEach(d::add);
                ArrayNode c = n.putArray("contexts");
                s.eval().contexts().forEach(c::add);
            }
            if (s.type().equals(EXPORT)) {
                n.put("merged", s.merged());
                if (s.dtype() == null) {
                    n.putNull("dtype");
                } else {
                    n.put("dtype", s.dtype());
                }
            }
        }
    }

    /** Key paths whose values differ between two resolved configs. */
    public static List<String> differences(com.fasterxml.jackson.databind.JsonNode a,
                                           com.fasterxml.jackson.databind.JsonNode b) {
        Map<String, String> fa = new java.util.TreeMap<>();
        Map<String, String> fb = new java.util.TreeMap<>();
        flatten("", a, fa);
        flatten("", b, fb);
        Set<String> keys = new java.util.TreeSet<>(fa.keySet());
        keys.addAll(fb.keySet());
        List<String> out = new ArrayList<>();
        for (String k : keys) {
            if (!java.util.Objects.equals(fa.get(k), fb.get(k))) {
                out.add(k);
            }
        }
        return out;
    }

    private static void flatten(String p, com.fasterxml.jackson.databind.JsonNode n, Map<String, String> out) {
        if (n.isObject()) {
            n.fields().forEachRemaining(e -> flatten(p.isEmpty() ? e.getKey() : p + "." + e.getKey(), e.getValue(), out));
        } else if (n.isArray()) {
            out.put(p + ".length", String.valueOf(n.size()));
            for (int i = 0; i < n.size(); i++) {
                flatten(p + "[" + i + "]", n.get(i), out);
            }
        } else {
            out.put(p, n.toString());
        }
    }
}
