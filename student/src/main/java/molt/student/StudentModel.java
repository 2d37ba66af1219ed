package molt.student;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
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
import molt.teacher.Projection;
import molt.teacher.model.AttentionCore;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.DecodeEngine;
import molt.teacher.model.DecoderState;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.LayerPass;
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
    /** Per layer: its mixer, or the teacher's softmax attention where the plan keeps it. */
    private final List<AttentionCore> cores;
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
        List<AttentionCore> m = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            m.add(MixerRegistry.core(plan.mixer(i), params, c.numHeads(), c.headDim(), c.hiddenSize(), settings));
        }
        this.cores = Collections.unmodifiableList(m);
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
        base.forgetCpuWeights();
        if (loraConfig != null) {
            throw new IllegalStateException("LoRA is already enabled");
        }
        LlamaConfig c = base.config();
        this.loraConfig = config;
        long s = seed;
        for (int i = 0; i < c.numLayers(); i++) {
            for (Projection t : config.projections()) {
                lora.put(key(i, t), LoraAdapter.create(params, config, t.in(c), t.out(c), s++));
            }
        }
    }

    /** Restores adapters from stored A and B values by parameter name (see {@link #loraParameters()}). */
    public void loadLora(LoraConfig config, Map<String, float[]> values) {
        base.forgetCpuWeights();
        LlamaConfig c = base.config();
        this.loraConfig = config;
        for (int i = 0; i < c.numLayers(); i++) {
            for (Projection t : config.projections()) {
                String prefix = t.prefix(i);
                float[] a = values.get(prefix + "lora_A.weight");
                float[] b = values.get(prefix + "lora_B.weight");
                if (a == null || b == null) {
                    throw new molt.teacher.InputException("adapter weights lack " + prefix + "lora_A/lora_B.weight");
                }
                lora.put(key(i, t), LoraAdapter.fromValues(params, config, t.in(c), t.out(c), a, b));
            }
        }
    }

    private static String key(int layer, Projection target) {
        return layer + "." + target.shortName();
    }

    /** Mixer parameters by checkpoint name. */
    public Map<String, NDArray> mixerParameters() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (int i = 0; i < cores.size(); i++) {
            out.putAll(mixerParameters(i));
        }
        return out;
    }

    /** Layer {@code layer}'s mixer parameters, named as in {@link #mixerParameters()} (none for a softmax layer). */
    public Map<String, NDArray> mixerParameters(int layer) {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : cores.get(layer).parameters().entrySet()) {
            out.put("model.layers." + layer + ".self_attn.mixer." + e.getKey(), e.getValue());
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
            for (Projection t : loraConfig.projections()) {
                LoraAdapter a = lora.get(key(i, t));
                for (Map.Entry<String, NDArray> e : a.parameters().entrySet()) {
                    out.put(t.prefix(i) + e.getKey(), e.getValue());
                }
            }
        }
        return out;
    }

    /** The adapter of one projection, or null. */
    public LoraAdapter adapter(int layer, String target) {
        return lora.get(key(layer, Projection.of(target)));
    }

    /**
     * Sets stored values into the mixer parameters (names as in {@link #mixerParameters()}); every missing or
     * mis-sized tensor is reported at once.
     */
    public void loadMixerParameters(Map<String, float[]> values) {
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, NDArray> e : mixerParameters().entrySet()) {
            float[] v = values.get(e.getKey());
            if (v == null) {
                problems.add(e.getKey() + ": missing (expected " + e.getValue().getShape() + ")");
            } else if (v.length != e.getValue().size()) {
                problems.add(e.getKey() + ": expected " + e.getValue().getShape() + " (" + e.getValue().size()
                        + " values), found " + v.length);
            }
        }
        if (!problems.isEmpty()) {
            throw new molt.teacher.InputException("student weights for plan " + plan.layers() + ": "
                    + problems.size() + " problem(s): " + String.join("; ", problems));
        }
        for (Map.Entry<String, NDArray> e : mixerParameters().entrySet()) {
            molt.teacher.nd.InPlace.copy(e.getValue(), values.get(e.getKey()));
        }
    }

    /** Turns LoRA dropout on (training) or off. */
    public void setTraining(boolean training, long dropoutSeed) {
        base.forgetCpuWeights(); // entering or leaving training: parameters change (or just did)
        this.training = training;
        this.dropoutRng = new SplittableRandom(dropoutSeed);
    }

    /** Freezes or unfreezes all mixers' parameters. */
    public void setMixersTrainable(boolean trainable) {
        base.forgetCpuWeights();
        for (int i : mixerLayers()) {
            mixer(i).setTrainable(trainable);
        }
    }

    /** Freezes or unfreezes all LoRA parameters. */
    public void setLoraTrainable(boolean trainable) {
        base.forgetCpuWeights();
        loraParameters().values().forEach(p -> p.setRequiresGradient(trainable));
    }

    /** The teacher's projections plus each enabled adapter's low-rank update. */
    private final Projector projector = new Projector() {
        @Override
        public NDArray project(int layer, Projection target, NDArray x, NDArray wT, NDArray b) {
            NDArray y = LlamaBlocks.linear(x, wT, b);
            LoraAdapter a = lora.get(key(layer, target));
            if (a == null || !a.enabled()) {
                return y;
            }
            return y.add(a.delta(x.getManager(), x, training, dropoutRng));
        }

        @Override
        public float[] effectiveWeightT(int layer, Projection target, float[] wT) {
            LoraAdapter a = lora.get(key(layer, target));
            return a == null || !a.enabled() ? wT : a.mergeIntoTransposed(wT);
        }
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

    /** The mixer of a layer; an IllegalArgumentException for a layer that keeps softmax attention. */
    public Mixer mixer(int layer) {
        if (plan.keepsSoftmax(layer)) {
            throw new IllegalArgumentException("layer " + layer + " keeps softmax attention: it has no mixer");
        }
        return (Mixer) cores.get(layer);
    }

    /** The layers whose attention a mixer replaces, in order. */
    public int[] mixerLayers() {
        return plan.mixerLayers();
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
        return base.run(out, tokens, cores, LayerPass.parallel(projector));
    }

    /**
     * A training step that recomputes each layer during backward instead of storing its intermediates
     * ({@link LlamaModel#recomputedStep}); LoRA dropout draws from a generator seeded by (dropoutSeed, layer), so
     * both passes of a layer see the same mask. Gradients accumulate in the trainable parameters; returns the loss.
     */
    public double recomputedStep(NDManager step, long[][] tokens, long dropoutSeed, int positions,
                                 LlamaModel.SlicedLoss loss, ai.djl.training.GradientCollector gc) {
        return base.recomputedStep(step, tokens, cores, projector,
                layer -> dropoutRng = new SplittableRandom(dropoutSeed * 1_000_003L + layer), positions, loss, gc);
    }

    /**
     * One layer's mixer on the teacher's recorded q, k (after RoPE) and v, before the GQA repeat, as in
     * attention transfer: returns the per-head output [B, T, Hq, D] (what o_proj would see), created in
     * {@code scope}.
     */
    public NDArray mixerOutput(NDManager scope, int layer, NDArray hidden, NDArray q, NDArray k, NDArray v) {
        Mixer m = mixer(layer);
        AttentionInput in = base.layers().get(layer).recordedInput(scope, hidden, q, k, v);
        return m.forward(scope, in, false).out().transpose(0, 2, 1, 3); // [B, T, Hq, D]
    }

    @Override
    public DecoderState newState() {
        return base.newState();
    }

    /**
     * Logits of {@code tokens} on top of {@code state} (see {@link LlamaModel#decode}). Steps in plain Java use the
     * teacher's weights with the adapters merged as they are when the state switches ({@link DecodeEngine}); every
     * call that changes adapters or makes parameters trainable drops that merged copy.
     */
    @Override
    public NDArray decode(NDManager out, DecodingState state, long[][] tokens) {
        return base.decode(out, state, tokens, cores, projector);
    }

    @Override
    public void setDecodeEngine(DecodeEngine engine) {
        base.setDecodeEngine(engine);
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
}
