package molt.teacher.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
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
import molt.teacher.io.Checkpoints;
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

    /** One decoder layer's weights; projection weights transposed to [in, out]; biases may be null. */
    public record Layer(NDArray inputNorm, NDArray qT, NDArray qB, NDArray kT, NDArray kB, NDArray vT, NDArray vB,
                        NDArray oT, NDArray oB, NDArray postNorm, NDArray gateT, NDArray gateB, NDArray upT,
                        NDArray upB, NDArray downT, NDArray downB) {
    }

    /** Logits [B, T, V] (null when not requested) and the taps per layer index. */
    public record Output(NDArray logits, Map<Integer, Taps.Layer> taps) {
    }

    private final LlamaConfig config;
    private final Device device;
    private final NDManager manager;
    private final NDArray embed;
    private final List<Layer> layers;
    private final NDArray norm;
    private final NDArray lmHeadT;
    private final Rope rope;
    /** Stored arrays by Hugging Face name; projections are stored transposed (see {@link #isTransposed}). */
    private final Map<String, NDArray> stored;

    private LlamaModel(LlamaConfig config, Device device, NDManager manager, NDArray embed, List<Layer> layers,
                       NDArray norm, NDArray lmHeadT, Map<String, NDArray> stored) {
        this.stored = stored;
        this.config = config;
        this.device = device;
        this.manager = manager;
        this.embed = embed;
        this.layers = layers;
        this.norm = norm;
        this.lmHeadT = lmHeadT;
        this.rope = new Rope(config);
    }

    /** Loads {@code DIR/config.json} and its weights onto {@code device}, checking every name and shape. */
    public static LlamaModel load(Path modelDir, Device device) {
        LlamaConfig config = LlamaConfig.read(modelDir);
        try (WeightSource w = Checkpoints.open(modelDir)) {
            long t0 = System.nanoTime();
            LlamaModel m = fromWeights(config, w, device);
            LOG.info("loaded {} ({} layers, {} parameters) from {} in {} ms", config.modelType(), config.numLayers(),
                    LlamaWeights.parameterCount(config), modelDir, (System.nanoTime() - t0) / 1_000_000);
            return m;
        }
    }

    /** Builds the model from any weight source (validated against the config first). */
    public static LlamaModel fromWeights(LlamaConfig c, WeightSource w, Device device) {
        return fromWeights(c, w, device, false);
    }

    /**
     * Builds the model; with {@code trainable}, every weight requires gradients (pretraining a teacher from scratch)
     * and the weights' manager is left uncapped, since gradients attach to it.
     */
    public static LlamaModel fromWeights(LlamaConfig c, WeightSource w, Device device, boolean trainable) {
        LlamaWeights.validate(c, w);
        NDManager m = NDManager.newBaseManager(device);
        try {
            NDArray embed = plain(m, w, "model.embed_tokens.weight");
            List<Layer> layers = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                layers.add(new Layer(
                        plain(m, w, LlamaWeights.layer(i, "input_layernorm.weight")),
                        transposed(m, w, LlamaWeights.layer(i, "self_attn.q_proj.weight")),
                        optional(m, w, LlamaWeights.layer(i, "self_attn.q_proj.bias"), c.qkvBias()),
                        transposed(m, w, LlamaWeights.layer(i, "self_attn.k_proj.weight")),
                        optional(m, w, LlamaWeights.layer(i, "self_attn.k_proj.bias"), c.qkvBias()),
                        transposed(m, w, LlamaWeights.layer(i, "self_attn.v_proj.weight")),
                        optional(m, w, LlamaWeights.layer(i, "self_attn.v_proj.bias"), c.qkvBias()),
                        transposed(m, w, LlamaWeights.layer(i, "self_attn.o_proj.weight")),
                        optional(m, w, LlamaWeights.layer(i, "self_attn.o_proj.bias"), c.oBias()),
                        plain(m, w, LlamaWeights.layer(i, "post_attention_layernorm.weight")),
                        transposed(m, w, LlamaWeights.layer(i, "mlp.gate_proj.weight")),
                        optional(m, w, LlamaWeights.layer(i, "mlp.gate_proj.bias"), c.mlpBias()),
                        transposed(m, w, LlamaWeights.layer(i, "mlp.up_proj.weight")),
                        optional(m, w, LlamaWeights.layer(i, "mlp.up_proj.bias"), c.mlpBias()),
                        transposed(m, w, LlamaWeights.layer(i, "mlp.down_proj.weight")),
                        optional(m, w, LlamaWeights.layer(i, "mlp.down_proj.bias"), c.mlpBias())));
            }
            NDArray norm = plain(m, w, "model.norm.weight");
            if (trainable && c.tieWordEmbeddings()) {
                throw new IllegalArgumentException("training a model with tied embeddings is not supported");
            }
            NDArray head = c.tieWordEmbeddings() ? embed.transpose().duplicate()
                    : transposed(m, w, "lm_head.weight");
            Map<String, NDArray> stored = new LinkedHashMap<>();
            stored.put("model.embed_tokens.weight", embed);
            String[] names = {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
                "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
                "self_attn.o_proj.weight", "self_attn.o_proj.bias", "post_attention_layernorm.weight",
                "mlp.gate_proj.weight", "mlp.gate_proj.bias", "mlp.up_proj.weight", "mlp.up_proj.bias",
                "mlp.down_proj.weight", "mlp.down_proj.bias"};
            for (int i = 0; i < layers.size(); i++) {
                Layer l = layers.get(i);
                NDArray[] arrays = {l.inputNorm(), l.qT(), l.qB(), l.kT(), l.kB(), l.vT(), l.vB(), l.oT(), l.oB(),
                    l.postNorm(), l.gateT(), l.gateB(), l.upT(), l.upB(), l.downT(), l.downB()};
                for (int j = 0; j < names.length; j++) {
                    if (arrays[j] != null) {
                        stored.put(LlamaWeights.layer(i, names[j]), arrays[j]);
                    }
                }
            }
            stored.put("model.norm.weight", norm);
            if (!c.tieWordEmbeddings()) {
                stored.put("lm_head.weight", head);
            }
            if (trainable) {
                stored.values().forEach(a -> a.setRequiresGradient(true));
            } else {
                // No per-call result may ever attach to the weights' manager: capping turns such a leak into an error.
                m.cap();
            }
            return new LlamaModel(c, device, m, embed, Collections.unmodifiableList(layers), norm, head,
                    Collections.unmodifiableMap(stored));
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    private static NDArray plain(NDManager m, WeightSource w, String name) {
        long[] shape = w.info(name).shape();
        return NativeArrays.floats(m, w.readFloats(name), new Shape(shape));
    }

    /** Stores W [out, in] as a contiguous W^T [in, out], so a projection is one matMul with no transpose. */
    private static NDArray transposed(NDManager m, WeightSource w, String name) {
        try (NDArray raw = plain(m, w, name); NDArray view = raw.transpose()) {
            NDArray t = view.duplicate();
            t.attach(m);
            return t;
        }
    }

    private static NDArray optional(NDManager m, WeightSource w, String name, boolean present) {
        return present ? plain(m, w, name) : null;
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

    /** The manager that owns the frozen weights; it is capped, so nothing else can be created in it. */
    public NDManager manager() {
        return manager;
    }

    public List<Layer> layers() {
        return layers;
    }

    public NDArray finalNorm() {
        return norm;
    }

    /** The LM head transposed, [H, V] (a copy of the embedding's transpose when tied). */
    public NDArray lmHeadT() {
        return lmHeadT;
    }

    public Rope rope() {
        return rope;
    }

    /** Token ids [B, T] to embeddings [B, T, H], created in {@code scope}. */
    public NDArray embed(NDManager scope, long[][] tokens) {
        int b = tokens.length;
        int t = tokens[0].length;
        long[] flat = new long[b * t];
        for (int i = 0; i < b; i++) {
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
                flat[i * t + j] = id;
            }
        }
        NDArray ids = NativeArrays.longs(scope, flat, new Shape(flat.length));
        NDArray rows = embed.get(scope, new NDIndex("{}", ids)); // [B*T, H]
        return rows.reshape(b, t, config.hiddenSize()); // [B, T, H]
    }

    /** Final RMSNorm and LM head: [B, T, H] -> logits [B, T, V]. */
    public NDArray head(NDArray h) {
        return LlamaBlocks.rmsNorm(h, norm, config.rmsNormEps()).matMul(lmHeadT);
    }

    /** Full forward over a batch of equal-length sequences; results attached to {@code out}. */
    public Output forward(NDManager out, long[][] tokens, Taps.Request request) {
        try (NDManager scope = out.newSubManager(device)) {
            NDArray h = embed(scope, tokens);
            Map<Integer, Taps.Layer> taps = new LinkedHashMap<>();
            int last = lastLayer(request);
            for (int i = 0; i <= last; i++) {
                boolean tap = request.wants(i);
                Layer l = layers.get(i);
                NDArray xn = LlamaBlocks.rmsNorm(h, l.inputNorm(), config.rmsNormEps());
                NDArray[] qkv = qkv(scope, i, l, xn, 0, Projector.PLAIN);
                NDList att = LlamaBlocks.softmaxAttention(scope,
                        qkv[0], LlamaBlocks.repeatKv(qkv[1], config.kvGroups()),
                        LlamaBlocks.repeatKv(qkv[2], config.kvGroups()), 0, tap && request.attentionWeights());
                NDArray perHead = att.get(0).transpose(0, 2, 1, 3); // [B, T, Hq, D]
                if (tap) {
                    taps.put(i, new Taps.Layer(
                            request.hidden() ? keep(h, out) : null,
                            request.qkv() ? keep(qkv[0], out) : null,
                            request.qkv() ? keep(qkv[1], out) : null,
                            request.qkv() ? keep(qkv[2], out) : null,
                            request.attentionOutput() ? keep(perHead, out) : null,
                            request.attentionWeights() ? keep(att.get(1), out) : null));
                }
                if (i == last && !request.logits()) {
                    break;
                }
                h = layerTail(i, l, h, perHead, Projector.PLAIN);
            }
            NDArray logits = null;
            if (request.logits()) {
                logits = head(h);
                logits.attach(out);
            }
            return new Output(logits, taps);
        }
    }

    private int lastLayer(Taps.Request r) {
        if (r.logits() || r.layers() == null) {
            return config.numLayers() - 1;
        }
        return r.layers().stream().mapToInt(Integer::intValue).max().orElse(-1);
    }

    /** A copy of x owned by {@code out} (x itself stays in the per-call scope, which may still use it). */
    private static NDArray keep(NDArray x, NDManager out) {
        NDArray c = x.duplicate();
        c.attach(out);
        return c;
    }

    /**
     * q [B, Hq, T, D], k and v [B, Hkv, T, D] for normed input xn [B, T, H] at positions start..start+T-1; q and
     * k after RoPE.
     */
    public NDArray[] qkv(NDManager scope, int i, Layer l, NDArray xn, long start, Projector p) {
        return rotate(scope, projections(i, l, xn, p), start);
    }

    /** q [B, Hq, T, D], k and v [B, Hkv, T, D] straight from the projections (no RoPE). */
    public NDArray[] projections(int i, Layer l, NDArray xn, Projector p) {
        NDArray q = LlamaBlocks.splitHeads(p.project(i, "q", xn, l.qT(), l.qB()), config.numHeads());
        NDArray k = LlamaBlocks.splitHeads(p.project(i, "k", xn, l.kT(), l.kB()), config.numKvHeads());
        NDArray v = LlamaBlocks.splitHeads(p.project(i, "v", xn, l.vT(), l.vB()), config.numKvHeads());
        return new NDArray[] {q, k, v};
    }

    /** RoPE on q and k of {@link #projections} at positions start..start+T-1 (v passes through). */
    public NDArray[] rotate(NDManager scope, NDArray[] qkv, long start) {
        int t = Math.toIntExact(qkv[0].getShape().get(2));
        NDArray cos = rope.cos(scope, start, t);
        NDArray sin = rope.sin(scope, start, t);
        return new NDArray[] {Rope.apply(qkv[0], cos, sin), Rope.apply(qkv[1], cos, sin), qkv[2]};
    }

    /** The rest of a layer after the attention core: o_proj, residual, post-norm, MLP, residual. */
    public NDArray layerTail(int i, Layer l, NDArray h, NDArray perHead, Projector p) {
        Shape s = perHead.getShape();
        NDArray merged = perHead.reshape(s.get(0), s.get(1), s.get(2) * s.get(3)); // [B, T, Hq*D]
        NDArray x = h.add(p.project(i, "o", merged, l.oT(), l.oB()));
        NDArray xn = LlamaBlocks.rmsNorm(x, l.postNorm(), config.rmsNormEps());
        return x.add(LlamaBlocks.mlp(i, l, xn, p));
    }

    @Override
    public NDArray logits(NDManager out, long[][] tokens) {
        return forward(out, tokens, Taps.Request.none()).logits();
    }

    @Override
    public KvCache newState() {
        return newCache();
    }

    @Override
    public NDArray decode(NDManager out, LanguageModel.DecodingState state, long[][] tokens) {
        if (!(state instanceof KvCache cache)) {
            throw new IllegalArgumentException("the teacher decodes with a KvCache, found " + state.getClass());
        }
        return decode(out, cache, tokens);
    }

    /** A fresh decoding state for this model. */
    public KvCache newCache() {
        return new KvCache(device, config.numLayers());
    }

    /**
     * Runs {@code tokens} [B, t] through the model on top of the cache (prefill when the cache is empty, one
     * decoding step when t = 1) and returns logits [B, t, V] attached to {@code out}.
     */
    public NDArray decode(NDManager out, KvCache cache, long[][] tokens) {
        try (NDManager scope = out.newSubManager(device)) {
            long start = cache.position;
            NDArray h = embed(scope, tokens);
            for (int i = 0; i < layers.size(); i++) {
                Layer l = layers.get(i);
                NDArray xn = LlamaBlocks.rmsNorm(h, l.inputNorm(), config.rmsNormEps());
                NDArray[] qkv = qkv(scope, i, l, xn, start, Projector.PLAIN);
                NDArray[] kv = cache.append(i, qkv[1], qkv[2]);
                NDArray k = LlamaBlocks.repeatKv(kv[0], config.kvGroups());
                NDArray v = LlamaBlocks.repeatKv(kv[1], config.kvGroups());
                // Without GQA repeatKv returns the cache's own arrays, which must stay in the cache.
                if (k != kv[0]) {
                    k.attach(scope);
                    v.attach(scope);
                }
                NDList att = LlamaBlocks.softmaxAttention(scope, qkv[0], k, v, start, false);
                h = layerTail(i, l, h, att.get(0).transpose(0, 2, 1, 3), Projector.PLAIN);
            }
            cache.position = start + tokens[0].length;
            NDArray logits = head(h);
            logits.attach(out);
            return logits;
        }
    }

    @Override
    public void close() {
        manager.close();
    }
}
