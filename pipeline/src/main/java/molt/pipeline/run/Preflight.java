package molt.pipeline.run;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import molt.data.DocumentSource;
import molt.data.Sources;
import molt.pipeline.config.AttentionTransferSpec;
import molt.pipeline.config.EvaluateSpec;
import molt.pipeline.config.RunConfig;
import molt.pipeline.config.StageSpec;
import molt.pipeline.train.TeacherPretrainStage;
import molt.teacher.Devices;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.tokenizer.Tokenizers;

/**
 * Everything a run can check before it writes anything, so that a refused run leaves no trace in its directory
 * and {@code molt validate} fails exactly where {@code molt run} would: the output directory (and the config that
 * made it, if any), the device, the
 * teacher (its config and tokenizer), every student's plan against the teacher's layers, the data source, and the
 * sizes that must fit the teacher's positions.
 */
public final class Preflight {
    private Preflight() {
    }

    /** Checks {@code cfg}; returns the teacher's architecture (the pretrained teacher's when a stage makes it). */
    public static LlamaConfig check(RunConfig cfg) {
        checkOutputDir(cfg.outputDir());
        ResolvedConfig.check(cfg.outputDir(), cfg);
        Devices.resolve(cfg.device());
        LlamaConfig c = teacher(cfg);
        cfg.student().plan(c.numLayers());
        for (RunConfig.Variant v : cfg.variants()) {
            v.student().plan(c.numLayers());
        }
        if (cfg.data().seqLen() > c.maxPositionEmbeddings()) {
            throw new InputException("data.seq_len " + cfg.data().seqLen() + " exceeds the teacher's "
                    + "max_position_embeddings " + c.maxPositionEmbeddings());
        }
        checkAutoSoftmax(cfg.student(), cfg.stages(), List.of(), c, "the student");
        for (RunConfig.Variant v : cfg.variants()) {
            checkAutoSoftmax(v.student(), v.stagesOf(cfg), v.skip(), c, "variant '" + v.name() + "'");
        }
        for (StageSpec s : cfg.stages()) {
            if (s instanceof AttentionTransferSpec a && a.layerGroups() > 0) {
                checkLayerGroups(a, cfg.student().plan(c.numLayers()), "the student");
                for (RunConfig.Variant v : cfg.variants()) {
                    if (!v.skip().contains(s.name())
                            && v.stagesOf(cfg).get(cfg.stages().indexOf(s)) instanceof AttentionTransferSpec va
                            && va.layerGroups() > 0) {
                        checkLayerGroups(va, v.student().plan(c.numLayers()), "variant '" + v.name() + "'");
                    }
                }
            }
            if (s instanceof EvaluateSpec e) {
                try {
                    e.settings().checkFits(c);
                } catch (InputException ex) {
                    throw new InputException("stage '" + s.name() + "': " + ex.getMessage());
                }
            }
        }
        String first = cfg.data().promptColumn() != null ? cfg.data().promptColumn() : cfg.data().column();
        try (DocumentSource src = Sources.open(cfg.data().source(), first, cfg.data().responseColumn())) {
            src.identity();
        }
        return c;
    }

    /**
     * softmax_layers: auto chooses from the chain's first attention transfer's per-layer validation errors: the chain
     * needs one, with validation, and a budget that leaves a layer to linearize.
     */
    private static void checkAutoSoftmax(RunConfig.Student st, List<StageSpec> stages, List<String> skip,
                                         LlamaConfig c, String who) {
        int mixers = st.plan(c.numLayers()).mixerLayers().length;
        if (!st.autoSoftmax() || mixers == 0) {
            return;
        }
        AttentionTransferSpec first = stages.stream().filter(AttentionTransferSpec.class::isInstance)
                .map(AttentionTransferSpec.class::cast).filter(a -> !skip.contains(a.name())).findFirst().orElse(null);
        if (first == null) {
            throw new InputException(st.origin() + ": softmax_layers: auto chooses from attention transfer's per-layer "
                    + "errors, but " + who + " has no attention_transfer stage; list the layers instead");
        }
        if (first.training().valBatches() == 0) {
            throw new InputException("stage '" + first.name() + "': softmax_layers: auto needs its per-layer "
                    + "validation errors; set val_batches > 0");
        }
        if (st.softmaxCount(mixers) >= mixers) {
            throw new InputException(st.origin() + ": softmax_budget " + st.softmaxBudget() + " keeps "
                    + st.softmaxCount(mixers) + " of the " + mixers + " mixer layers of " + who
                    + ": nothing would be linearized");
        }
    }

    /** An attention-transfer stage cannot have more layer groups than the student has mixer layers to split. */
    private static void checkLayerGroups(AttentionTransferSpec a, molt.student.StudentPlan plan, String who) {
        int layers = plan.mixerLayers().length;
        if (layers > 0 && a.layerGroups() > layers) {
            throw new InputException("stage '" + a.name() + "': layer_groups " + a.layerGroups() + " exceeds the "
                    + layers + " mixer layers of " + who + "; use at most " + layers);
        }
    }

    /** The teacher's architecture; a teacher on disk must be a model directory whose tokenizer molt can use. */
    public static LlamaConfig teacher(RunConfig cfg) {
        if (cfg.pretrainStage() != null) {
            LlamaConfig c = TeacherPretrainStage.config(cfg.pretrainStage().pretrain());
            checkPretrainingFits(c);
            return c;
        }
        Path t = cfg.teacher();
        if (!Files.isRegularFile(t.resolve("config.json"))) {
            throw new InputException(t, "teacher.path: not a model directory (no config.json)");
        }
        LlamaConfig c = LlamaConfig.read(t);
        Tokenizers.load(t);
        return c;
    }

    /**
     * A teacher trained from scratch holds its weights, their gradients and AdamW's two moments in F32 (16 bytes a
     * parameter), each tensor made from one Java array: refused before anything is allocated when that cannot fit.
     */
    private static void checkPretrainingFits(LlamaConfig c) {
        for (long[] shape : molt.teacher.LlamaWeights.expected(c).values()) {
            long n = java.util.Arrays.stream(shape).reduce(1, Math::multiplyExact);
            if (n > Integer.MAX_VALUE - 8) {
                throw new InputException("teacher_pretrain: a tensor of shape " + java.util.Arrays.toString(shape)
                        + " has " + n + " values, more than one array can hold");
            }
        }
        long need = 16 * molt.teacher.LlamaWeights.parameterCount(c);
        long have = physicalMemory();
        if (have > 0 && need > have) {
            throw new InputException(String.format("teacher_pretrain: %,d parameters need %.1f GiB for weights, "
                    + "gradients and AdamW state, this machine has %.1f GiB", molt.teacher.LlamaWeights.parameterCount(c),
                    need / (double) (1L << 30), have / (double) (1L << 30)));
        }
    }

    /** The machine's physical memory in bytes, or 0 when the JVM cannot tell. */
    private static long physicalMemory() {
        var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return os instanceof com.sun.management.OperatingSystemMXBean o ? o.getTotalMemorySize() : 0;
    }

    /** The output directory is a directory (or can become one): not a file, nor under a file. */
    private static void checkOutputDir(Path dir) {
        for (Path p = dir.toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.exists(p) && !Files.isDirectory(p)) {
                throw new InputException(dir, "output_dir: " + (p.equals(dir.toAbsolutePath()) ? "is a file"
                        : p + " is a file") + " (expected a directory)");
            }
            if (Files.isDirectory(p)) {
                if (!Files.isWritable(p)) {
                    throw new InputException(dir, "output_dir: " + p + " is not writable");
                }
                return;
            }
        }
    }
}
