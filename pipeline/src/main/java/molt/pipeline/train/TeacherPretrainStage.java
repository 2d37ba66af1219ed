package molt.pipeline.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import molt.data.BatchReader;
import molt.data.SpanCopy;
import molt.pipeline.config.RunConfig;
import molt.pipeline.config.TeacherPretrainSpec;
import molt.teacher.LlamaConfig;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.Digests;
import molt.teacher.io.JsonFiles;
import molt.teacher.model.LlamaModel;
import molt.teacher.tokenizer.ByteTokenizer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The {@code teacher_pretrain} stage: trains a small Llama-architecture teacher from scratch with next-token
 * cross-entropy on the run's data (byte tokenizer), to a token budget, and saves it in the Hugging Face layout with
 * its {@code tokenizer.json}. The teacher lands in a cache directory named by a hash of everything that determines it
 * (architecture, budget, optimizer, seed and data), so another run with the same settings reuses it.
 */
public final class TeacherPretrainStage extends TrainingLoop<TeacherPretrainSpec, Void> {
    private static final Logger LOG = LogManager.getLogger(TeacherPretrainStage.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final LlamaModel model;
    private final NDManager manager;

    private TeacherPretrainStage(StageContext ctx, Device device) {
        super(ctx, TeacherPretrainSpec.class);
        LlamaConfig c = config(stage.pretrain());
        this.model = LlamaModel.fromWeights(c, new molt.teacher.io.RandomWeights(c, ctx.config().seed()), device, true);
        this.manager = NDManager.newBaseManager(device);
    }

    /** The teacher's architecture: byte vocabulary, untied LM head, SiLU MLP. */
    public static LlamaConfig config(TeacherPretrainSpec.Pretrain p) {
        ObjectNode n = JSON.createObjectNode().put("model_type", "llama").put("vocab_size", ByteTokenizer.VOCAB)
                .put("hidden_size", p.hidden()).put("intermediate_size", p.intermediate())
                .put("num_hidden_layers", p.layers()).put("num_attention_heads", p.heads())
                .put("num_key_value_heads", p.kvHeads()).put("rms_norm_eps", 1e-5).put("rope_theta", p.ropeTheta())
                .put("max_position_embeddings", 8192).put("tie_word_embeddings", false)
                .put("bos_token_id", ByteTokenizer.BOS).put("eos_token_id", ByteTokenizer.EOS)
                .put("hidden_act", "silu").put("torch_dtype", "float32");
        n.putArray("architectures").add("LlamaForCausalLM");
        return LlamaConfig.fromJson(n, Path.of("teacher_pretrain"));
    }

    /**
     * The version of what teacher pretraining computes, part of the cache key: bump it with any change that alters
     * a pretrained teacher's weights (TeacherPretrainPinTest pins a short run's weights and fails until it is).
     */
    public static final int FORMAT = 1;

    /**
     * Where the teacher of these settings lives: the cache directory plus a hash of what determines the teacher, its
     * settings and data and what else decides its bytes: the code's numerics (FORMAT), the engine and the threads.
     */
    public static Path cacheDir(RunConfig cfg) {
        if (cfg.threads() == RunConfig.AUTO_THREADS) {
            throw new IllegalStateException("the teacher cache key needs the resolved thread count (Runner.resolve)");
        }
        ObjectNode key = settingsKey(cfg);
        key.put("format", FORMAT).put("djl", molt.pipeline.BuildInfo.djlVersion())
                .put("libtorch", ai.djl.engine.Engine.getEngine("PyTorch").getVersion()).put("threads", cfg.threads());
        if (trainsThroughFusedAttention(cfg)) {
            key.put("fused_attention_from", molt.teacher.nd.FusedAttention.TRAINING_FROM);
        }
        return cacheDir(cfg, key);
    }

    /**
     * True when some pretraining sequence is long enough to train through fused attention
     * ({@link molt.teacher.nd.FusedAttention#TRAINING_FROM}): such a teacher's weights differ in float rounding from
     * the ones molt made before that, so its key differs too. Shorter pretraining computes what it always did and
     * keeps its key (the quickstart's teacher among them).
     */
    static boolean trainsThroughFusedAttention(RunConfig cfg) {
        if (!molt.teacher.nd.FusedAttention.enabled()) {
            return false;
        }
        int longest = cfg.data().seqLen();
        for (var st : cfg.stages()) {
            if (st instanceof TeacherPretrainSpec p) {
                TeacherPretrainSpec.Repeats r = p.pretrain().repeats();
                if (r.warmupSteps() > 0 || r.every() > 0) {
                    longest = Math.max(longest, r.seqLen());
                }
            }
        }
        return longest >= molt.teacher.nd.FusedAttention.TRAINING_FROM;
    }

    /**
     * Where molt kept this teacher before the key hashed anything but its settings. A run directory whose pretraining
     * finished then still resumes with the teacher it was distilled from (see Runner); new runs never look here.
     */
    public static Path legacyCacheDir(RunConfig cfg) {
        return cacheDir(cfg, settingsKey(cfg));
    }

    private static ObjectNode settingsKey(RunConfig cfg) {
        ObjectNode key = JSON.createObjectNode();
        ObjectNode resolved = cfg.toJson();
        for (var st : resolved.path("stages")) {
            if (st.path("type").asText().equals(TeacherPretrainSpec.TYPE)) {
                key.set("stage", st);
            }
        }
        key.set("data", resolved.path("data"));
        key.put("seed", cfg.seed());
        return key;
    }

    private static Path cacheDir(RunConfig cfg, ObjectNode key) {
        try {
            return cfg.teacherCache().resolve("teacher-" + Digests.hex(JSON.writeValueAsBytes(key)).substring(0, 16));
        } catch (java.io.IOException e) {
            throw new IllegalStateException("cannot serialise the teacher's cache key", e);
        }
    }

    /** The stage's result.json, kept beside the cached teacher. */
    static final String TRAINING_RECORD = "molt_pretrain.json";

    /** Trains the teacher into its cache directory, or reuses the one already there. */
    public static void runOrReuse(StageContext ctx, Device device) throws IOException {
        Path dir = ctx.teacherDir();
        if (Files.isRegularFile(dir.resolve("config.json"))) {
            LOG.info("{}: reusing the cached teacher {}", ctx.stage().name(), dir);
            Path trained = dir.resolve(TRAINING_RECORD);
            ObjectNode result = Files.isRegularFile(trained) ? JsonFiles.readObject(trained)
                    : JSON.createObjectNode();
            result.put("cached", true).put("teacher", dir.toString());
            AtomicFiles.writeString(ctx.stageDir().resolve("result.json"), result.toPrettyString());
            return;
        }
        TeacherPretrainStage s = new TeacherPretrainStage(ctx, device);
        try {
            s.run();
            Path tmp = dir.resolveSibling("." + dir.getFileName() + ".tmp");
            if (Files.exists(tmp)) {
                try (var w = Files.walk(tmp)) {
                    w.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
            s.model.save(tmp);
            new ByteTokenizer().save(tmp);
            // What the training was (steps, tokens, losses), so a run that reuses the teacher can report it.
            Files.copy(ctx.stageDir().resolve("result.json"), tmp.resolve(TRAINING_RECORD));
            AtomicFiles.moveAtomically(tmp, dir);
            LOG.info("{}: teacher saved to {}", ctx.stage().name(), dir);
        } finally {
            s.manager.close();
            s.model.close();
        }
    }

    @Override
    protected NDManager manager() {
        return manager;
    }

    @Override
    protected Map<String, NDArray> trainable() {
        return model.storedWeights();
    }

    @Override
    protected Map<String, NDArray> studentWeights() {
        return model.storedWeights();
    }

    private NDArray crossEntropy(NDManager step, BatchReader.Batch batch) {
        NDArray logits = model.trainingLogits(step, AttentionTransferStage.inputs(batch.rows()));
        return logits.logSoftmax(-1).gather(LoraFinetuneStage.targets(step, batch.rows()), -1).mean().neg();
    }

    @Override
    protected NDArray loss(NDManager step, BatchReader.Batch batch, long stepIndex, Void prepared) {
        // The curriculum's batches (extraBatch) come from no shard and are used as they are.
        return crossEntropy(step, batch.shards() == null ? batch : augmented(batch, stepIndex));
    }

    /**
     * Steps of the induction curriculum (TeacherPretrainSpec.Repeats): the warmup, then one after every {@code every} corpus
     * steps.
     */
    @Override
    protected long extraSteps(long corpusSteps) {
        TeacherPretrainSpec.Repeats r = stage.pretrain().repeats();
        return r.warmupSteps() + (r.every() > 0 ? corpusSteps / r.every() : 0);
    }

    /**
     * Repeated random blocks at the curriculum's steps: short sequences during the warmup, then every
     * {@code every + 1}-th step sequences of the run's length with periods up to half of it (long-distance
     * copying), as many as hold the warmup steps' tokens. Seeded by the run's seed and the step.
     */
    @Override
    protected BatchReader.Batch extraBatch(long step) {
        TeacherPretrainSpec.Repeats r = stage.pretrain().repeats();
        java.util.Random rnd = new java.util.Random(ctx.config().seed() * 1_000_033L + step + 17);
        long[] letters = molt.data.RepeatedBlocks.lowercaseLetters();
        if (step < r.warmupSteps()) {
            return synthetic(molt.data.RepeatedBlocks.batch(rnd, letters, r.sequences(), r.seqLen() + 1,
                    r.minPeriod(), r.maxPeriod()));
        }
        long after = step - r.warmupSteps();
        if (r.every() <= 0 || (after + 1) % (r.every() + 1) != 0) {
            return null;
        }
        int seqLen = ctx.config().data().seqLen();
        int rows = Math.max(1, r.sequences() * r.seqLen() / seqLen);
        return synthetic(molt.data.RepeatedBlocks.batch(rnd, letters, rows, seqLen + 1, r.minPeriod(),
                Math.max(r.minPeriod(), seqLen / 2)));
    }

    private static BatchReader.Batch synthetic(long[][] rows) {
        return new BatchReader.Batch(rows, null, null, null);
    }

    /**
     * The batch with copy augmentation applied to {@code copy_fraction} of its rows, seeded by the run's seed and
     * the micro-step, so a resumed run sees the same sequences.
     */
    private BatchReader.Batch augmented(BatchReader.Batch batch, long stepIndex) {
        TeacherPretrainSpec.Pretrain p = stage.pretrain();
        if (p.copyFraction() <= 0) {
            return batch;
        }
        java.util.Random r = new java.util.Random(ctx.config().seed() * 1_000_003L + stepIndex);
        long[][] rows = new long[batch.rows().length][];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = batch.rows()[i].clone();
            if (r.nextDouble() < p.copyFraction()) {
                boolean scramble = r.nextDouble() < p.copyScrambled();
                // Letter spans are made-up words between spaces; spans of the row's own tokens stay as drawn.
                boolean letters = p.copyScrambleFrom().equals("letters");
                long[] pool = !scramble ? null
                        : letters ? molt.data.RepeatedBlocks.lowercaseLetters() : rows[i].clone();
                SpanCopy.apply(rows[i], r, p.copyMinSpan(), p.copyMaxSpan(), pool, letters ? ' ' : -1);
            }
        }
        return batch.withRows(rows);
    }

    /**
     * Repeated-span recall (molt.data.probes.RecallProbes) at a quarter and three quarters of the sequence length,
     * logged as {@code val_recall} at each validation: copying appears abruptly during pretraining (induction heads),
     * and this shows when.
     */
    @Override
    protected void validationExtras(ObjectNode rec) {
        int seqLen = ctx.config().data().seqLen();
        BatchReader val = new BatchReader(ctx.data(), "val", 1, 0);
        long[] filler = val.next()[0];
        ByteTokenizer tok = new ByteTokenizer();
        double sum = 0;
        int n = 0;
        for (int d : new int[] {seqLen / 4, seqLen * 3 / 4}) {
            if (d >= 16) { // shorter distances do not fit a probe's span
                sum += molt.pipeline.eval.Evaluator.recall(model, tok, filler, 12, d, 4);
                n++;
            }
        }
        if (n > 0) {
            rec.put("val_recall", sum / n);
        }
    }

    @Override
    protected double validationLoss(NDManager step, BatchReader.Batch batch) {
        return crossEntropy(step, batch).getFloat();
    }
}
