package molt.teacher.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.Precision;
import molt.teacher.io.HalfConversion;
import molt.teacher.io.Checkpoints;
import molt.teacher.io.Floats;
import molt.teacher.io.WeightSource;
import molt.teacher.nd.NativeArrays;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * A frozen Llama-family decoder (transformers' {@code LlamaForCausalLM}) on DJL: embedding, per layer
 * x + attn(rmsnorm(x)) then x + mlp(rmsnorm(x)), final RMSNorm and LM head. Weights live in the model's own
 * manager as fp32 (projection weights stored transposed, [in, out]) and never require gradients. Every forward
 * runs in a sub-manager that is closed before it returns; results are attached to the caller's manager, so a
 * forward leaves no NDArray behind.
 *
 * <p>Shapes: B batch, T time, H hidden, V vocab, Hq/Hkv heads, D head dim.
 */
public final class LlamaModel implements LanguageModel {
    private static final Logger LOG = LogManager.getLogger(LlamaModel.class);

    /** Logits [B, T, V] (null when not requested) and the taps per layer index. */
    public record Output(NDArray logits, Map<Integer, Taps.Layer> taps) {
    }

    private final LlamaConfig config;
    private final Device device;
    private final NDManager manager;
    private final NDArray embed;
    private final List<DecoderLayer> layers;
    private final List<AttentionCore> softmax;
    private final NDArray norm;
    /** The LM head as W^T [H, V]; null for 16-bit tied embeddings, whose head is the embedding itself. */
    private final NDArray lmHeadT;
    private final Precision precision;
    private final Frozen frozen;
    private final Rope rope;
    /** Stored arrays by Hugging Face name; projections are stored transposed (see {@link #isTransposed}). */
    private final Map<String, NDArray> stored;
    /** True when the weights train (pretraining): decoding then stays on the engine, which reads them live. */
    private final boolean trainable;
    private volatile DecodeEngine decodeEngine = DecodeEngine.AUTO;
    /** Java copies of the weights per projector, made on the first step decoded in plain Java. */
    private final Map<Projector, CpuWeights> cpuWeights = new java.util.IdentityHashMap<>();

    private LlamaModel(LlamaConfig config, Device device, NDManager manager, Map<String, NDArray> stored,
                       NDArray lmHeadT, Precision precision, Frozen frozen, boolean trainable) {
        this.stored = stored;
        this.trainable = trainable;
        this.config = config;
        this.device = device;
        this.manager = manager;
        this.precision = precision;
        this.frozen = frozen;
        this.embed = stored.get("model.embed_tokens.weight");
        this.norm = stored.get("model.norm.weight");
        this.lmHeadT = lmHeadT;
        this.rope = new Rope(config);
        List<DecoderLayer> l = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            l.add(new DecoderLayer(i, config, rope, stored, frozen));
        }
        this.layers = Collections.unmodifiableList(l);
        // The model's own attention, in BF16 where its 16-bit weights multiply in BF16 (a frozen teacher: pretraining
        // holds F32 weights); students' softmax layers are their own cores, in F32.
        this.softmax = Collections.nCopies(config.numLayers(), new SoftmaxAttention(device, bf16Products()));
    }

    /** True when this model's 16-bit frozen weights multiply in BF16 (HALF on CPU). */
    private boolean bf16Products() {
        return frozen.products(precision, device.isGpu()).equals("bf16");
    }

    /** Loads {@code DIR/config.json} and its weights onto {@code device} as F32, checking every name and shape. */
    public static LlamaModel load(Path modelDir, Device device) {
        return load(modelDir, device, Precision.F32);
    }

    /** Loads {@code DIR/config.json} and its weights onto {@code device}, frozen weights held at {@code precision}. */
    public static LlamaModel load(Path modelDir, Device device, Precision precision) {
        LlamaConfig config = LlamaConfig.read(modelDir);
        try (WeightSource w = Checkpoints.open(modelDir)) {
            long t0 = System.nanoTime();
            LlamaModel m = fromWeights(config, w, device, false, precision);
            LOG.info("loaded {} ({} layers, {} parameters, {} frozen weights{}) from {} in {} ms", config.modelType(),
                    config.numLayers(), LlamaWeights.parameterCount(config), precision.setting(),
                    switch (m.frozen.products(precision, device.isGpu())) {
                        case "f16" -> ", F16 products";
                        case "bf16" -> ", BF16 products and attention";
                        case "f32-widened" -> ", widened to F32 for products";
                        default -> "";
                    },
                    modelDir, (System.nanoTime() - t0) / 1_000_000);
            return m;
        }
    }

    /** Builds the model from any weight source (validated against the config first), as F32. */
    public static LlamaModel fromWeights(LlamaConfig c, WeightSource w, Device device) {
        return fromWeights(c, w, device, false, Precision.F32);
    }

    /** Builds the model as F32; with {@code trainable}, every weight requires gradients (pretraining). */
    public static LlamaModel fromWeights(LlamaConfig c, WeightSource w, Device device, boolean trainable) {
        return fromWeights(c, w, device, trainable, Precision.F32);
    }

    /** Builds the model from any weight source with frozen weights held at {@code precision}. */
    public static LlamaModel fromWeights(LlamaConfig c, WeightSource w, Device device, Precision precision) {
        return fromWeights(c, w, device, false, precision);
    }

    /**
     * Builds the model; with {@code trainable}, every weight requires gradients (pretraining a teacher from scratch,
     * F32 only) and the weights' manager is left uncapped, since gradients attach to it. With {@link Precision#F16}
     * the matrices (embedding, projections, LM head) are held as F16 and used as {@link Frozen#forDevice} says;
     * norms and biases stay F32. Each matrix's conversion is checked ({@link HalfConversion#check}) and the total is
     * logged.
     */
    public static LlamaModel fromWeights(LlamaConfig c, WeightSource w, Device device, boolean trainable,
                                         Precision precision) {
        return fromWeights(c, w, device, trainable, precision, Frozen.forDevice(device));
    }

    /** As above with an explicit use of 16-bit weights (tests run the GPU's {@link Frozen#HALF} path on a CPU). */
    public static LlamaModel fromWeights(LlamaConfig c, WeightSource w, Device device, boolean trainable,
                                         Precision precision, Frozen frozen) {
        LlamaWeights.validate(c, w);
        if (trainable && c.tieWordEmbeddings()) {
            throw new IllegalArgumentException("training a model with tied embeddings is not supported");
        }
        if (trainable && precision != Precision.F32) {
            throw new IllegalArgumentException("trainable weights must be F32, found precision " + precision);
        }
        NDManager m = NDManager.newBaseManager(device);
        try {
            Loader load = new Loader(m, w, precision);
            Map<String, long[]> expected = LlamaWeights.expected(c);
            Map<String, NDArray> stored = new LinkedHashMap<>();
            stored.put("model.embed_tokens.weight", load.matrix("model.embed_tokens.weight", false));
            for (int i = 0; i < c.numLayers(); i++) {
                for (String name : LAYER_TENSORS) {
                    String full = LlamaWeights.layer(i, name);
                    if (expected.containsKey(full)) {
                        stored.put(full, isTransposed(full) ? load.matrix(full, true) : plain(m, w, full));
                    }
                }
            }
            stored.put("model.norm.weight", plain(m, w, "model.norm.weight"));
            NDArray head;
            if (!c.tieWordEmbeddings()) {
                head = load.matrix("lm_head.weight", true);
                stored.put("lm_head.weight", head);
            } else {
                head = precision == Precision.F32 ? stored.get("model.embed_tokens.weight").transpose().duplicate() : null;
            }
            if (precision != Precision.F32) {
                LOG.info("{}: {}", w.origin(), load.total().summary());
            }
            if (trainable) {
                stored.values().forEach(a -> a.setRequiresGradient(true));
            } else {
                // No per-call result may ever attach to the weights' manager: capping turns such a leak into an error.
                m.cap();
            }
            return new LlamaModel(c, device, m, Collections.unmodifiableMap(stored), head, precision, frozen,
                    trainable);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /** A layer's tensors in the order they are stored (and saved); biases only where the checkpoint has them. */
    private static final String[] LAYER_TENSORS = {"input_layernorm.weight", "self_attn.q_proj.weight",
        "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
        "self_attn.v_proj.bias", "self_attn.o_proj.weight", "self_attn.o_proj.bias", "post_attention_layernorm.weight",
        "mlp.gate_proj.weight", "mlp.gate_proj.bias", "mlp.up_proj.weight", "mlp.up_proj.bias",
        "mlp.down_proj.weight", "mlp.down_proj.bias"};

    private static NDArray plain(NDManager m, WeightSource w, String name) {
        long[] shape = w.info(name).shape();
        return NativeArrays.floats(m, Floats.requireFinite(w.origin(), name, w.readFloats(name)), new Shape(shape));
    }

    /**
     * Reads matrices into the weights' manager at one precision. A projection W [out, in] is stored as a
     * contiguous W^T [in, out], so a projection is one matMul with no transpose.
     */
    private static final class Loader {
        private final NDManager m;
        private final WeightSource w;
        private final Precision precision;
        private final HalfConversion total = new HalfConversion();

        Loader(NDManager m, WeightSource w, Precision precision) {
            this.m = m;
            this.w = w;
            this.precision = precision;
        }

        NDArray matrix(String name, boolean transpose) {
            if (precision == Precision.F16) {
                HalfConversion conversion = new HalfConversion();
                NDArray a = molt.teacher.io.HalfArrays.read(m, w, name, transpose, conversion);
                try {
                    conversion.check(w.origin(), name);
                } catch (RuntimeException e) {
                    a.close();
                    throw e;
                }
                total.add(conversion);
                return a;
            }
            if (!transpose) {
                return plain(m, w, name);
            }
            try (NDArray raw = plain(m, w, name); NDArray view = raw.transpose()) {
                NDArray t = view.duplicate();
                t.attach(m);
                return t;
            }
        }

        HalfConversion total() {
            return total;
        }
    }

    @Override
    public LlamaConfig config() {
        return config;
    }

    /**
     * The model's arrays by Hugging Face tensor name. Projection weights are held transposed ([in, out]);
     * {@link #isTransposed} tells which.
     */
    public Map<String, NDArray> storedWeights() {
        return stored;
    }

    /** A row-major [rows, cols] matrix transposed to [cols, rows] (in Java: no array joins the weights' manager). */
    private static float[] transpose(float[] m, int rows, int cols) {
        float[] t = new float[m.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = m[r * cols + c];
            }
        }
        return t;
    }

    /** True for names whose stored array is the transpose of the checkpoint tensor. */
    public static boolean isTransposed(String name) {
        return name.endsWith("_proj.weight") || name.equals("lm_head.weight");
    }

    /** Writes the weights as a Hugging Face directory (config.json from the config, model.safetensors in F32). */
    public void save(Path dir) throws java.io.IOException {
        java.nio.file.Files.createDirectories(dir);
        List<molt.teacher.io.SafetensorsWriter.Tensor> tensors = new ArrayList<>();
        for (Map.Entry<String, NDArray> e : stored.entrySet()) {
            NDArray a = e.getValue();
            boolean t = isTransposed(e.getKey());
            long[] shape = t ? new long[] {a.getShape().get(1), a.getShape().get(0)} : a.getShape().getShape();
            tensors.add(molt.teacher.io.SafetensorsWriter.Tensor.ofFloats(e.getKey(), molt.teacher.io.DType.F32, shape,
                    () -> t ? transpose(NativeArrays.values(a), (int) a.getShape().get(0), (int) a.getShape().get(1))
                            : NativeArrays.values(a)));
        }
        molt.teacher.io.SafetensorsWriter.write(dir.resolve(Checkpoints.SINGLE), tensors, Map.of("format", "pt"));
        com.fasterxml.jackson.databind.node.ObjectNode raw = config.raw().deepCopy();
        raw.put("torch_dtype", "float32");
        molt.teacher.io.AtomicFiles.writeString(dir.resolve("config.json"), raw.toPrettyString());
    }

    @Override
    public Device device() {
        return device;
    }

    /** The precision the frozen weights are held at. */
    public Precision precision() {
        return precision;
    }

    /** How 16-bit weights are used (widened on CPU, multiplied in F16 on GPU). */
    public Frozen frozen() {
        return frozen;
    }

    /** The manager that owns the frozen weights; it is capped, so nothing else can be created in it. */
    public NDManager manager() {
        return manager;
    }

    /** The decoder layers. */
    public List<DecoderLayer> layers() {
        return layers;
    }

    /** Refuses a batch [B, T] of sequences of different lengths or with ids outside the vocabulary. */
    private void checkIds(long[][] tokens) {
        int t = tokens[0].length;
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i].length != t) {
                throw new InputException("batch: every sequence must have the same length; sequence 0 has " + t
                        + " tokens, sequence " + i + " has " + tokens[i].length);
            }
            for (int j = 0; j < t; j++) {
                long id = tokens[i][j];
                if (id < 0 || id >= config.vocabSize()) {
                    throw new InputException("token id " + id + " at position " + j + " is outside the vocabulary [0, "
                            + config.vocabSize() + ")");
                }
            }
        }
    }

    /** Refuses t tokens from position {@code start} on that run past max_position_embeddings. */
    private void checkPositions(long start, int t) {
        long end = start + t;
        if (end > config.maxPositionEmbeddings()) {
            throw new InputException("positions " + start + ".." + (end - 1) + " exceed the model's "
                    + "max_position_embeddings " + config.maxPositionEmbeddings() + " (config.json)");
        }
    }

    /** Token ids [B, T] to embeddings [B, T, H], created in {@code scope}. */
    private NDArray embed(NDManager scope, long[][] tokens) {
        checkIds(tokens);
        int b = tokens.length;
        int t = tokens[0].length;
        long[] flat = new long[b * t];
        for (int i = 0; i < b; i++) {
            System.arraycopy(tokens[i], 0, flat, i * t, t);
        }
        if (flat.length == 1) {
            // One token: its row as a view of the table (one native call; an index array and gather take ten).
            // Nothing writes into a layer's input in place, so the view never changes the table.
            NDArray row = embed.get(scope, flat[0]); // [H]
            if (embed.getDataType() != DataType.FLOAT32) {
                row = row.toType(DataType.FLOAT32, false);
            }
            return row.reshape(1, 1, config.hiddenSize()); // [B = 1, T = 1, H]
        }
        NDArray ids = NativeArrays.longs(scope, flat, new Shape(flat.length));
        NDArray rows = embed.get(scope, new NDIndex("{}", ids)); // [B*T, H]
        if (rows.getDataType() != DataType.FLOAT32) {
            rows = rows.toType(DataType.FLOAT32, false); // activations are F32 whatever the weights' precision
        }
        return rows.reshape(b, t, config.hiddenSize()); // [B, T, H]
    }

    /** Final RMSNorm and LM head: [B, T, H] -> logits [B, T, V]; a 16-bit head is made usable in {@code scope}. */
    private NDArray head(NDManager scope, NDArray h) {
        return head(scope, h, false);
    }

    /** {@link #head}; with {@code inPlace} the norm works in place (see {@link LayerPass#inPlace}). */
    private NDArray head(NDManager scope, NDArray h, boolean inPlace) {
        NDArray normed = LlamaBlocks.rmsNorm(h, norm, config.rmsNormEps(), inPlace);
        NDArray headT = lmHeadT != null ? frozen.use(scope, lmHeadT)
                : frozen.use(scope, embed).transpose(); // [H, V], a view of the tied [V, H] embedding
        return LlamaBlocks.linear(normed, headT, null);
    }

    /**
     * The decoder-layer loop, the one place every forward of the teacher and of every student runs through:
     * embeddings, then each layer with its core under {@code pass}, then (when the pass runs every layer's output)
     * the final norm and LM head. Returns logits [B, T, V], or null when the pass stops early; everything is
     * created in {@code scope}, so under a gradient collector backward can still use it.
     */
    public NDArray run(NDManager scope, long[][] tokens, List<? extends AttentionCore> cores, LayerPass pass) {
        if (cores.size() != layers.size()) {
            throw new IllegalArgumentException("expected one attention core per layer (" + layers.size()
                    + "), found " + cores.size());
        }
        checkPositions(pass.start(), tokens[0].length);
        NDArray h = embed(scope, tokens);
        DecoderLayer.Positions at = DecoderLayer.Positions.of(scope, rope, tokens.length, tokens[0].length,
                pass.start()); // RoPE's tables once for every layer
        // One token's layers are small: they run in the pass's scope (a scope per layer costs more than it frees).
        boolean ownScopes = !pass.keepsIntermediates() && tokens[0].length > 1;
        int last = pass.lastLayer(layers.size());
        for (int i = 0; i <= last; i++) {
            h = ownScopes ? layerInOwnScope(scope, layers.get(i), h, cores.get(i), pass, at)
                    : layers.get(i).forward(scope, h, cores.get(i), pass, at);
        }
        return last == layers.size() - 1 && pass.needsOutput(last) ? head(scope, h, pass.inPlace()) : null;
    }

    /**
     * One layer in a scope of its own: its input and every intermediate are freed when it returns, so a pass that
     * needs no backward holds one layer's arrays at a time (what it records is copied out by the pass).
     */
    private static NDArray layerInOwnScope(NDManager scope, DecoderLayer layer, NDArray h, AttentionCore core,
                                           LayerPass pass, DecoderLayer.Positions at) {
        try (NDManager own = scope.newSubManager()) {
            h.attach(own); // results follow their first operand: the layer's arrays now land in its own scope
            NDArray next = layer.forward(own, h, core, pass, at);
            next.attach(scope);
            return next;
        }
    }

    /** A training loss computed a slice of positions at a time (see {@link #recomputedStep}). */
    @FunctionalInterface
    public interface SlicedLoss {
        /**
         * The loss's share from positions [from, to), given their logits [B, to - from, V] in {@code scope}; the
         * shares of all slices sum to the loss.
         */
        NDArray share(NDManager scope, NDArray logits, int from, int to);
    }

    /**
     * A training step that keeps only each layer's input instead of every intermediate: a forward without autograd
     * recording the inputs h_0..h_L; the final norm, LM head and loss {@code positions} positions at a time, each
     * slice's backward run at once (so [B, T, V] logits never exist whole); then, from the last layer down, each
     * layer recomputed with autograd in a scope of its own and its gradient sent back through backward(sum(y * g)),
     * which hands the layer's parameters and input exactly the gradient g of its output. Parameter gradients are
     * those of one backward through the whole graph (to float rounding where a softmax layer's first pass, without
     * autograd, was fused: {@link molt.teacher.nd.FusedAttention}); the peak holds the weights, L + 1 layer inputs and one layer's
     * arrays (with its widened weights when they are 16-bit). {@code beforeLayer} runs before each layer's forward in
     * both passes (to make random draws such as dropout repeat). Returns the loss.
     */
    public double recomputedStep(NDManager step, long[][] tokens, List<? extends AttentionCore> cores,
                                 Projector projector, java.util.function.IntConsumer beforeLayer, int positions,
                                 SlicedLoss loss, ai.djl.training.GradientCollector gc) {
        LayerPass pass = LayerPass.parallel(projector);
        List<NDArray> inputs = new ArrayList<>();
        NDArray h;
        ai.djl.pytorch.jni.JniUtils.setGradMode(false);
        try {
            h = embed(step, tokens);
            for (int i = 0; i < layers.size(); i++) {
                inputs.add(h);
                beforeLayer.accept(i);
                try (NDManager own = step.newSubManager()) {
                    NDArray view = h.get(own, new NDIndex()); // the input stays in step; the layer's arrays go in own
                    h = layers.get(i).forward(own, view, cores.get(i), pass);
                    h.attach(step);
                }
            }
        } finally {
            ai.djl.pytorch.jni.JniUtils.setGradMode(true);
        }
        h.setRequiresGradient(true);
        double total = 0;
        int t = tokens[0].length;
        for (int from = 0; from < t; from += positions) {
            int to = Math.min(t, from + positions);
            try (NDManager own = step.newSubManager()) {
                NDArray slice = molt.teacher.nd.Ops.slice(own, h, 1, from, to); // [B, to - from, H], one slice op
                if (!blocksHead()) {
                    NDArray share = loss.share(own, head(own, slice), from, to);
                    total += share.getFloat();
                    gc.backward(share);
                    continue;
                }
                total += blockedHead(own, slice, from, to, loss, gc);
            }
        }
        NDArray g = h.getGradient().duplicate(); // dLoss/dh_L [B, T, H]
        g.attach(step);
        for (int i = layers.size() - 1; i >= 0; i--) {
            NDArray x = inputs.get(i);
            boolean inputGradient = i > 0;
            if (inputGradient) {
                x.setRequiresGradient(true);
            }
            try (NDManager own = step.newSubManager()) {
                x.attach(own); // the layer's arrays land in its own scope and are freed with it
                beforeLayer.accept(i);
                NDArray y = layers.get(i).forward(own, x, cores.get(i), pass);
                gc.backward(y.mul(g).sum());
                g.close();
                if (inputGradient) {
                    g = x.getGradient().duplicate(); // dLoss/dh_i
                    g.attach(step);
                }
            }
        }
        return total;
    }

    /**
     * True when the LM head is 16-bit on CPU: used whole, it would be widened to 4 x V x H bytes (or rounded to a
     * BF16 copy of 2 x V x H bytes), so it is used a block of rows at a time.
     */
    private boolean blocksHead() {
        NDArray w = lmHeadT != null ? lmHeadT : embed;
        return w.getDataType() != DataType.FLOAT32 && (frozen == Frozen.WIDEN || !device.isGpu());
    }

    /** Values per block of a widened LM head: 2^24 (64 MiB as F32); smaller in tests, to run several blocks. */
    private long headBlockValues = 1L << 24;

    /** Vocabulary rows per block of a 16-bit LM head on CPU. */
    private long headBlock() {
        return Math.max(1, headBlockValues / config.hiddenSize());
    }

    /** Sets the values per block of a 16-bit LM head (tests exercise several blocks on tiny models). */
    void headBlockValues(long values) {
        this.headBlockValues = values;
    }

    /**
     * Columns v0..v1-1 of the 16-bit LM head as an [H, v1 - v0] matrix in {@code scope}: widened to F32 (WIDEN), or a
     * view of the 16-bit rows that {@link LlamaBlocks#linear} multiplies in BF16 (HALF on CPU).
     */
    private NDArray headColumns(NDManager scope, long v0, long v1) {
        NDArray rows = lmHeadT != null ? lmHeadT.get(scope, new NDIndex(":, {}:{}", v0, v1)) // [H, Vb]
                : embed.get(scope, new NDIndex("{}:{}", v0, v1)); // [Vb, H]
        NDArray cols = frozen.use(scope, rows); // widened (WIDEN) or the 16-bit view (HALF)
        return lmHeadT != null ? cols : cols.transpose(); // [H, Vb]
    }

    /**
     * One slice of positions through the final norm, a 16-bit LM head and the loss, with the head's product and its
     * gradient computed a block of vocabulary rows at a time (each block widened, used and freed), so no widened
     * copy of the whole head exists: logits are computed without autograd, the loss's gradient dL/dlogits taken
     * from them, dL/dnormed = sum over blocks of dL/dlogits[:, :, block] W_block, and that sent back through the norm
     * to the final hidden state. Returns the slice's share of the loss.
     */
    private double blockedHead(NDManager scope, NDArray slice, int from, int to, SlicedLoss loss,
                               ai.djl.training.GradientCollector gc) {
        NDArray normed = LlamaBlocks.rmsNorm(slice, norm, config.rmsNormEps()); // [B, t, H], graph to h
        NDArray fixed = normed.stopGradient();
        long v = config.vocabSize();
        NDList blocks = new NDList();
        ai.djl.pytorch.jni.JniUtils.setGradMode(false);
        try {
            for (long v0 = 0; v0 < v; v0 += headBlock()) {
                try (NDManager block = scope.newSubManager()) {
                    NDArray part = LlamaBlocks.linear(fixed, headColumns(block, v0, Math.min(v, v0 + headBlock())),
                            null); // [B, t, Vb]
                    part.attach(scope);
                    blocks.add(part);
                }
            }
        } finally {
            ai.djl.pytorch.jni.JniUtils.setGradMode(true);
        }
        NDArray logits = NDArrays.concat(blocks, -1); // [B, t, V]
        blocks.forEach(NDArray::close);
        logits.setRequiresGradient(true);
        NDArray share = loss.share(scope, logits, from, to);
        double value = share.getFloat();
        gc.backward(share);
        NDArray gradLogits = logits.getGradient(); // [B, t, V]
        NDArray gradNormed = null;
        ai.djl.pytorch.jni.JniUtils.setGradMode(false);
        try {
            for (long v0 = 0; v0 < v; v0 += headBlock()) {
                long v1 = Math.min(v, v0 + headBlock());
                try (NDManager block = scope.newSubManager()) {
                    NDArray g = gradLogits.get(block, new NDIndex(":, :, {}:{}", v0, v1)); // [B, t, Vb]
                    NDArray part = LlamaBlocks.linear(g, headColumns(block, v0, v1).transpose(), null); // [B, t, H]
                    NDArray sum = gradNormed == null ? part : gradNormed.add(part);
                    sum.attach(scope);
                    if (gradNormed != null) {
                        gradNormed.close();
                    }
                    gradNormed = sum;
                }
            }
        } finally {
            ai.djl.pytorch.jni.JniUtils.setGradMode(true);
        }
        gc.backward(normed.mul(gradNormed).sum());
        return value;
    }

    /** Full forward over a batch of equal-length sequences; results attached to {@code out}, the rest freed. */
    public Output forward(NDManager out, long[][] tokens, Taps.Request request) {
        try (NDManager scope = out.newSubManager(device)) {
            TapPass pass = new TapPass(Projector.PLAIN, request, scope, out, layers.size());
            NDArray logits = run(scope, tokens, softmax, pass);
            if (logits != null) {
                logits.attach(out);
            }
            return new Output(logits, pass.taps());
        }
    }

    /**
     * A training forward (pretraining the teacher): logits [B, T, V] with every intermediate in {@code step}, so
     * backward can use them; close {@code step} after backward.
     */
    public NDArray trainingLogits(NDManager step, long[][] tokens) {
        return run(step, tokens, softmax, LayerPass.parallel(Projector.PLAIN));
    }

    @Override
    public NDArray logits(NDManager out, long[][] tokens) {
        return forward(out, tokens, Taps.Request.none()).logits();
    }

    @Override
    public DecoderState newState() {
        return new DecoderState(layers.size());
    }

    @Override
    public NDArray decode(NDManager out, DecodingState state, long[][] tokens) {
        return decode(out, state, tokens, softmax, Projector.PLAIN);
    }

    /**
     * Runs {@code tokens} [B, t] through the layers with {@code cores} on top of {@code state} (prefill when it is
     * empty, a decoding step when t = 1) and returns logits [B, t, V] attached to {@code out}. On a non-empty state,
     * cores that step one token at a time get the tokens one by one.
     */
    public NDArray decode(NDManager out, DecodingState state, long[][] tokens, List<? extends AttentionCore> cores,
                          Projector projector) {
        if (!(state instanceof DecoderState st)) {
            throw new IllegalArgumentException("expected a DecoderState, found " + state.getClass().getSimpleName());
        }
        int t = tokens[0].length;
        if (st.cpu() != null || switchToCpu(st, tokens, cores, projector)) {
            return decodeInJava(out, st, tokens);
        }
        if (t > 1 && st.position() > 0 && !cores.stream().allMatch(AttentionCore::stepsMany)) {
            NDList rows = new NDList();
            for (int j = 0; j < t; j++) {
                rows.add(decode(out, st, column(tokens, j), cores, projector));
            }
            NDArray all = NDArrays.concat(rows, 1); // [B, t, V]
            rows.forEach(NDArray::close);
            return all;
        }
        // Decoding never runs backward: with grad mode off, ops on trainable mixer parameters (and everything
        // downstream of them) record no autograd graph. The values are the same either way.
        boolean grad = ai.djl.pytorch.jni.JniUtils.isGradMode();
        if (grad) {
            ai.djl.pytorch.jni.JniUtils.setGradMode(false);
        }
        try (NDManager scope = out.newSubManager(device)) {
            NDArray logits = run(scope, tokens, cores, new DecodePass(projector, st));
            st.advance(t);
            logits.attach(out);
            return logits;
        } finally {
            if (grad) {
                ai.djl.pytorch.jni.JniUtils.setGradMode(true);
            }
        }
    }

    /** Sets where single-sequence decoding steps run (default {@link DecodeEngine#AUTO}). */
    @Override
    public void setDecodeEngine(DecodeEngine engine) {
        this.decodeEngine = engine;
    }

    /** Drops the Java copies of the weights (a student's LoRA or mixer parameters changed; they are made again). */
    public void forgetCpuWeights() {
        synchronized (cpuWeights) {
            cpuWeights.clear();
        }
    }

    /**
     * Whether a single-token step on {@code st} can run in plain Java ({@link DecodeEngine}): after a prefill, one
     * sequence, on the CPU, F32 frozen weights that do not train, every core with a Java form. If so the state
     * switches (its per-layer states copied into Java) and true is returned; a state found unable never asks again.
     */
    private boolean switchToCpu(DecoderState st, long[][] tokens, List<? extends AttentionCore> cores,
                                Projector projector) {
        DecodeEngine engine = decodeEngine;
        // Only a single-token step switches: a prompt fed in pieces stays on the engine, whose products are large.
        if (engine == DecodeEngine.DJL || st.engineOnly() || st.position() == 0 || tokens[0].length != 1) {
            return false;
        }
        String why = javaBlocker(tokens.length, engine);
        molt.teacher.cpu.CpuStep[] steps = new molt.teacher.cpu.CpuStep[cores.size()];
        for (int i = 0; why == null && i < cores.size(); i++) {
            steps[i] = cores.get(i).cpuStep(st.get(i, cores.get(i)), config.kvGroups());
            if (steps[i] == null) {
                why = "layer " + i + "'s attention core (" + cores.get(i).getClass().getSimpleName()
                        + ") has no plain-Java form";
            }
        }
        if (why != null) {
            if (engine == DecodeEngine.JAVA) {
                throw new IllegalStateException("decode engine java: cannot decode in plain Java with " + why);
            }
            st.markEngineOnly();
            return false;
        }
        CpuWeights w;
        synchronized (cpuWeights) {
            w = cpuWeights.computeIfAbsent(projector, p -> CpuWeights.of(config, stored, p));
        }
        st.useCpu(new CpuDecoding(config, w, steps, rope));
        return true;
    }

    /** Why a step of {@code batch} sequences cannot run in plain Java under {@code engine}; null when it can. */
    private String javaBlocker(int batch, DecodeEngine engine) {
        if (batch != 1) {
            return "a batch of " + batch;
        }
        if (!Device.Type.CPU.equals(device.getDeviceType())) {
            return "device " + device;
        }
        if (precision != Precision.F32) {
            return "precision " + precision.setting();
        }
        if (trainable) {
            return "weights that train";
        }
        if (engine == DecodeEngine.AUTO && LlamaWeights.parameterCount(config) > DecodeEngine.AUTO_MAX_PARAMETERS) {
            return "more than " + DecodeEngine.AUTO_MAX_PARAMETERS + " parameters";
        }
        return null;
    }

    /** Tokens [1, t] through the plain-Java steps of {@code st}: logits [1, t, V] attached to {@code out}. */
    private NDArray decodeInJava(NDManager out, DecoderState st, long[][] tokens) {
        if (tokens.length != 1) {
            throw new IllegalArgumentException("a state decoding in plain Java takes one sequence, found a batch of "
                    + tokens.length);
        }
        int t = tokens[0].length;
        int v = config.vocabSize();
        checkPositions(st.position(), t);
        checkIds(tokens);
        float[] all = t == 1 ? null : new float[t * v];
        float[] last = null;
        for (int j = 0; j < t; j++) {
            last = st.cpu().step(tokens[0][j], st.position());
            st.advance(1);
            if (all != null) {
                System.arraycopy(last, 0, all, j * v, v);
            }
        }
        return NativeArrays.floats(out, all != null ? all : last, new Shape(1, t, v)); // [B = 1, t, V]
    }

    /** Column j of tokens [B, t] as [B, 1]. */
    private static long[][] column(long[][] tokens, int j) {
        long[][] one = new long[tokens.length][1];
        for (int b = 0; b < tokens.length; b++) {
            one[b][0] = tokens[b][j];
        }
        return one;
    }

    @Override
    public void close() {
        manager.close();
    }
}
