package molt.student;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import molt.student.lora.LoraAdapter;
import molt.student.lora.LoraConfig;
import molt.student.mixer.Mixer;
import molt.student.mixer.MixerRegistry;
import molt.student.mixer.MixerSettings;
import molt.teacher.LlamaConfig;
import molt.teacher.model.AttentionCore;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import molt.teacher.model.KvCache;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.LlamaBlocks;
import molt.teacher.model.LlamaModel;
import molt.teacher.model.Projector;

/**
 * The teacher with its softmax attention replaced, layer by layer, by mixers. The teacher's weights are shared
 * (the student holds the loaded {@link LlamaModel} and never copies them) and frozen; the new parameters are the
 * mixers' and, once enabled, LoRA adapters on chosen projections. Layers the plan marks {@code softmax} keep the
 * teacher's attention (and a KV cache when decoding).
 *
 * <p>Parameter names follow the checkpoint layout: {@code model.layers.i.self_attn.mixer.<name>} for mixers,
 * {@code model.layers.i.self_attn.q_proj.lora_A.weight} (PEFT's names) for adapters.
 *
 * <p>Shapes: B batch, T time, H hidden, Hq query heads, D head dim, V vocab.
 */
public final class StudentModel implements LanguageModel {
    private final LlamaModel base;
    private final Path baseDir;
    private final StudentPlan plan;
    private final MixerSettings settings;
    private final NDManager params;
    private final List<Mixer> mixers;
    private final Map<String, LoraAdapter> lora = new LinkedHashMap<>();
    private LoraConfig loraConfig;
    private boolean training;
    private SplittableRandom dropoutRng = new SplittableRandom(0);

    private StudentModel(LlamaModel base, Path baseDir, StudentPlan plan, MixerSettings settings) {
        LlamaConfig c = base.config();
        if (plan.size() != c.numLayers()) {
            throw new IllegalArgumentException("plan has " + plan.size() + " layers, the model " + c.numLayers());
        }
        this.base = base;
        this.baseDir = baseDir;
        this.plan = plan;
        this.settings = settings;
        this.params = NDManager.newBaseManager(base.device());
        List<Mixer> m = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            m.add(plan.keepsSoftmax(i) ? null
                    : MixerRegistry.create(plan.mixer(i), params, c.numHeads(), c.headDim(), c.hiddenSize(), settings));
        }
        this.mixers = Collections.unmodifiableList(m);
    }

    /**
     * A student on a loaded teacher: fresh mixers at their initializations. {@code baseDir} is the teacher's
     * directory (recorded on export; may be null for in-memory teachers).
     */
    public static StudentModel create(LlamaModel base, Path baseDir, StudentPlan plan, MixerSettings settings) {
        return new StudentModel(base, baseDir, plan, settings);
    }

    /** Adds LoRA adapters (B = 0, so the model's function is unchanged) to every layer's targets. */
    public void enableLora(LoraConfig config, long seed) {
        if (loraConfig != null) {
            throw new IllegalStateException("LoRA is already enabled");
        }
        LlamaConfig c = base.config();
        this.loraConfig = config;
        long s = seed;
        for (int i = 0; i < c.numLayers(); i++) {
            for (String t : config.targets()) {
                int[] io = inOut(c, t);
                lora.put(key(i, t), LoraAdapter.create(params, config, io[0], io[1], s++));
            }
        }
    }

    /** Restores adapters from stored A and B values by parameter name (see {@link #loraParameters()}). */
    public void loadLora(LoraConfig config, Map<String, float[]> values) {
        LlamaConfig c = base.config();
        this.loraConfig = config;
        for (int i = 0; i < c.numLayers(); i++) {
            for (String t : config.targets()) {
                int[] io = inOut(c, t);
                String prefix = loraPrefix(i, t);
                float[] a = values.get(prefix + "lora_A.weight");
                float[] b = values.get(prefix + "lora_B.weight");
                if (a == null || b == null) {
                    throw new molt.teacher.InputException("adapter weights lack " + prefix + "lora_A/lora_B.weight");
                }
                lora.put(key(i, t), LoraAdapter.fromValues(params, config, io[0], io[1], a, b));
            }
        }
    }

    static int[] inOut(LlamaConfig c, String target) {
        return switch (target) {
            case "q" -> new int[] {c.hiddenSize(), c.qDim()};
            case "k", "v" -> new int[] {c.hiddenSize(), c.kvDim()};
            case "o" -> new int[] {c.qDim(), c.hiddenSize()};
            case "gate", "up" -> new int[] {c.hiddenSize(), c.intermediateSize()};
            case "down" -> new int[] {c.intermediateSize(), c.hiddenSize()};
            default -> throw new IllegalArgumentException("unknown LoRA target " + target);
        };
    }

    private static String key(int layer, String target) {
        return layer + "." + target;
    }

    /** The checkpoint name prefix of a projection, e.g. {@code model.layers.3.self_attn.q_proj.}. */
    public static String projectionPrefix(int layer, String target) {
        String module = switch (target) {
            case "q", "k", "v", "o" -> "self_attn." + target + "_proj.";
            default -> "mlp." + target + "_proj.";
        };
        return "model.layers." + layer + "." + module;
    }

    private static String loraPrefix(int layer, String target) {
        return projectionPrefix(layer, target);
    }

    /** Mixer parameters by checkpoint name. */
    public Map<String, NDArray> mixerParameters() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (int i = 0; i < mixers.size(); i++) {
            if (mixers.get(i) != null) {
                for (Map.Entry<String, NDArray> e : mixers.get(i).parameters().entrySet()) {
                    out.put("model.layers." + i + ".self_attn.mixer." + e.getKey(), e.getValue());
                }
            }
        }
        return out;
    }

    /** LoRA parameters by checkpoint name (empty until {@link #enableLora}). */
    public Map<String, NDArray> loraParameters() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        LlamaConfig c = base.config();
        for (int i = 0; i < c.numLayers(); i++) {
            if (loraConfig == null) {
                break;
            }
            for (String t : loraConfig.targets()) {
                LoraAdapter a = lora.get(key(i, t));
                for (Map.Entry<String, NDArray> e : a.parameters().entrySet()) {
                    out.put(loraPrefix(i, t) + e.getKey(), e.getValue());
                }
            }
        }
        return out;
    }

    /** The adapter of one projection, or null. */
    public LoraAdapter adapter(int layer, String target) {
        return lora.get(key(layer, target));
    }

    /** Sets stored values into the mixer parameters (names as in {@link #mixerParameters()}). */
    public void loadMixerParameters(Map<String, float[]> values) {
        for (Map.Entry<String, NDArray> e : mixerParameters().entrySet()) {
            float[] v = values.get(e.getKey());
            if (v == null) {
                throw new molt.teacher.InputException("student weights lack " + e.getKey());
            }
            if (v.length != e.getValue().size()) {
                throw new molt.teacher.InputException(e.getKey() + ": expected " + e.getValue().getShape() + " ("
                        + e.getValue().size() + " values), found " + v.length);
            }
            molt.teacher.nd.InPlace.copy(e.getValue(), v);
        }
    }

    /** Turns LoRA dropout on (training) or off. */
    public void setTraining(boolean training, long dropoutSeed) {
        this.training = training;
        this.dropoutRng = new SplittableRandom(dropoutSeed);
    }

    /** Freezes or unfreezes all mixers' parameters. */
    public void setMixersTrainable(boolean trainable) {
        mixers.forEach(m -> {
            if (m != null) {
                m.setTrainable(trainable);
            }
        });
    }

    /** Freezes or unfreezes all LoRA parameters. */
    public void setLoraTrainable(boolean trainable) {
        loraParameters().values().forEach(p -> p.setRequiresGradient(trainable));
    }

    private final Projector projector = (layer, target, x, wT, b) -> {
        NDArray y = LlamaBlocks.linear(x, wT, b);
        LoraAdapter a = lora.get(key(layer, target));
        if (a == null || !a.enabled()) {
            return y;
        }
        return y.add(a.delta(x.getManager(), x, training, dropoutRng));
    };

    public LlamaModel base() {
        return base;
    }

    public Path baseDir() {
        return baseDir;
    }

    public StudentPlan plan() {
        return plan;
    }

    public MixerSettings settings() {
        return settings;
    }

    public LoraConfig loraConfig() {
        return loraConfig;
    }

    /** The mixer of a layer (null for kept softmax layers). */
    public Mixer mixer(int layer) {
        return mixers.get(layer);
    }

    @Override
    public LlamaConfig config() {
        return base.config();
    }

    @Override
    public Device device() {
        return base.device();
    }

    /**
     * Parallel forward: logits [B, T, V]. Every intermediate is created in {@code out} too, because under a
     * gradient collector backward still needs them: pass a per-call (or per-step) manager and close it after use
     * (after backward when training).
     */
    @Override
    public NDArray logits(NDManager out, long[][] tokens) {
        NDManager scope = out;
        NDArray h = base.embed(scope, tokens);
        LlamaConfig c = base.config();
        for (int i = 0; i < c.numLayers(); i++) {
            LlamaModel.Layer l = base.layers().get(i);
            NDArray xn = LlamaBlocks.rmsNorm(h, l.inputNorm(), c.rmsNormEps());
            NDArray[] raw = base.projections(i, l, xn, projector);
            NDArray[] qkv = base.rotate(scope, raw, 0);
            NDArray k = LlamaBlocks.repeatKv(qkv[1], c.kvGroups());
            NDArray v = LlamaBlocks.repeatKv(qkv[2], c.kvGroups());
            NDArray heads;
            if (mixers.get(i) == null) {
                heads = LlamaBlocks.softmaxAttention(scope, qkv[0], k, v, 0, false).get(0);
            } else {
                heads = mixers.get(i).forward(scope, new AttentionInput(xn, qkv[0], k, v, raw[0],
                        LlamaBlocks.repeatKv(raw[1], c.kvGroups())), false).out();
            }
            h = base.layerTail(i, l, h, heads.transpose(0, 2, 1, 3), projector); // heads: [B, T, Hq, D]
        }
        return base.head(h);
    }

    /**
     * One layer's mixer on the teacher's recorded q, k (after RoPE) and v, before the GQA repeat, as in
     * attention transfer: returns the per-head output [B, T, Hq, D] (what o_proj would see), created in
     * {@code scope}.
     */
    public NDArray mixerOutput(NDManager scope, int layer, NDArray hidden, NDArray q, NDArray k, NDArray v) {
        Mixer m = mixers.get(layer);
        if (m == null) {
            throw new IllegalArgumentException("layer " + layer + " keeps softmax attention: it has no mixer");
        }
        LlamaConfig c = base.config();
        NDArray kr = LlamaBlocks.repeatKv(k, c.kvGroups());
        NDArray vr = LlamaBlocks.repeatKv(v, c.kvGroups());
        // The recorded q and k carry RoPE; mixers that drop it (Mamba-2) get them rotated back.
        int t = Math.toIntExact(q.getShape().get(2));
        NDArray cos = base.rope().cos(scope, 0, t);
        NDArray sin = base.rope().sin(scope, 0, t);
        NDArray qRaw = molt.teacher.model.Rope.unapply(q, cos, sin);
        NDArray kRaw = LlamaBlocks.repeatKv(molt.teacher.model.Rope.unapply(k, cos, sin), c.kvGroups());
        NDArray xn = hidden == null ? null
                : LlamaBlocks.rmsNorm(hidden, base.layers().get(layer).inputNorm(), c.rmsNormEps());
        return m.forward(scope, new AttentionInput(xn, q, kr, vr, qRaw, kRaw), false).out().transpose(0, 2, 1, 3);
    }

    @Override
    public StudentState newState() {
        return new StudentState(device(), mixers.size());
    }

    @Override
    public NDArray decode(NDManager out, DecodingState state, long[][] tokens) {
        StudentState st = (StudentState) state;
        int t = tokens[0].length;
        if (t > 1 && st.position() > 0) {
            // Continue token by token on a non-empty state.
            NDList rows = new NDList();
            for (int j = 0; j < t; j++) {
                long[][] one = new long[tokens.length][1];
                for (int b = 0; b < tokens.length; b++) {
                    one[b][0] = tokens[b][j];
                }
                rows.add(decode(out, st, one));
            }
            NDArray all = ai.djl.ndarray.NDArrays.concat(rows, 1);
            rows.forEach(NDArray::close);
            return all;
        }
        try (NDManager scope = out.newSubManager(device())) {
            long start = st.position();
            NDArray h = base.embed(scope, tokens);
            LlamaConfig c = base.config();
            for (int i = 0; i < c.numLayers(); i++) {
                LlamaModel.Layer l = base.layers().get(i);
                NDArray xn = LlamaBlocks.rmsNorm(h, l.inputNorm(), c.rmsNormEps());
                NDArray[] raw = base.projections(i, l, xn, projector);
                NDArray[] qkv = base.rotate(scope, raw, start);
                NDArray heads;
                if (mixers.get(i) == null) {
                    NDArray[] kv = st.cache.append(i, qkv[1], qkv[2]);
                    NDArray k = LlamaBlocks.repeatKv(kv[0], c.kvGroups());
                    NDArray v = LlamaBlocks.repeatKv(kv[1], c.kvGroups());
                    // Without GQA repeatKv returns the cache's own arrays, which must stay in the cache.
                    if (k != kv[0]) {
                        k.attach(scope);
                        v.attach(scope);
                    }
                    heads = LlamaBlocks.softmaxAttention(scope, qkv[0], k, v, start, false).get(0);
                } else {
                    NDArray k = LlamaBlocks.repeatKv(qkv[1], c.kvGroups());
                    NDArray v = LlamaBlocks.repeatKv(qkv[2], c.kvGroups());
                    AttentionInput in = new AttentionInput(xn, qkv[0], k, v, raw[0], LlamaBlocks.repeatKv(raw[1], c.kvGroups()));
                    if (start == 0) {
                        AttentionCore.Output o = mixers.get(i).forward(scope, in, true);
                        st.setMixerState(i, o.state());
                        heads = o.out();
                    } else {
                        AttentionState ms = st.mixerState(i);
                        if (ms == null) {
                            ms = mixers.get(i).newState();
                            st.setMixerState(i, ms);
                        }
                        heads = mixers.get(i).step(scope, ms, in);
                    }
                }
                h = base.layerTail(i, l, h, heads.transpose(0, 2, 1, 3), projector);
            }
            st.advance(t);
            NDArray logits = base.head(h);
            logits.attach(out);
            return logits;
        }
    }

    /** Arrays alive in the student's and the teacher's managers (flat across training steps, or something leaks). */
    public int liveArrays() {
        return params.getManagedArrays().size() + base.manager().getManagedArrays().size();
    }

    @Override
    public void close() {
        params.close();
        base.close();
    }

    /** Decoding state: one mixer state per mixer layer, a KV cache for kept softmax layers. */
    public static final class StudentState implements DecodingState {
        private final AttentionState[] states;
        final KvCache cache;
        private long position;

        StudentState(Device device, int layers) {
            this.states = new AttentionState[layers];
            this.cache = new KvCache(device, layers);
        }

        AttentionState mixerState(int layer) {
            return states[layer];
        }

        void setMixerState(int layer, AttentionState s) {
            if (states[layer] != null) {
                states[layer].close();
            }
            states[layer] = s;
        }

        void advance(long t) {
            position += t;
            cache.advance(t);
        }

        @Override
        public long position() {
            return position;
        }

        @Override
        public long bytes() {
            long n = cache.bytes();
            for (AttentionState s : states) {
                n += s == null ? 0 : s.bytes();
            }
            return n;
        }

        @Override
        public void close() {
            for (AttentionState s : states) {
                if (s != null) {
                    s.close();
                }
            }
            cache.close();
        }
    }
}
