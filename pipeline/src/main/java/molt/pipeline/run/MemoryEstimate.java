package molt.pipeline.run;

import molt.pipeline.config.RunConfig;
import molt.student.StudentPlan;
import molt.student.mixer.MixerRegistry;
import molt.student.lora.LoraConfig;
import molt.teacher.LlamaConfig;
import molt.teacher.Precision;
import molt.teacher.Projection;

/**
 * What a training step of each student stage allocates, modelled on what molt holds (not a rule of thumb), in bytes:
 * the process's fixed part, the frozen weights at their precision, the trained parameters with gradients and AdamW
 * state, and the step's arrays. Checked against measured peaks in docs/BENCHMARKS.md ({@code molt bench scale}).
 *
 * <p>Symbols: B batch, T sequence length, L layers, H hidden, I intermediate, V vocabulary, Hq/Hkv heads, D head dim.
 */
public record MemoryEstimate(long baseBytes, long frozenBytes, long mixerBytes, long loraBytes, long transferStepBytes,
                             long loraStepBytes) {
    /**
     * The JVM (its heap grown by loading and data preparation), libtorch and molt's own buffers: the resident memory
     * a training step starts from besides the arrays modelled below, measured at the SmolLM2-135M shape.
     */
    static final long BASE = 700L << 20;

    public static MemoryEstimate of(RunConfig cfg, LlamaConfig c) {
        long params = molt.teacher.LlamaWeights.parameterCount(c);
        return of(cfg, c, molt.teacher.nd.Bf16Products.usedFor(Precision.resolve(cfg.precision(), params)));
    }

    /**
     * The estimate for a CPU whose 16-bit products are BF16 ({@code bf16}: no widened copies, and the allocator mode
     * {@link molt.teacher.nd.NativeMemory#modeFor} picks for that) or widened to F32.
     */
    static MemoryEstimate of(RunConfig cfg, LlamaConfig c, boolean bf16) {
        long params = molt.teacher.LlamaWeights.parameterCount(c);
        Precision p = Precision.resolve(cfg.precision(), params);
        boolean reuse = molt.teacher.nd.NativeMemory.modeFor(params, bf16) == molt.teacher.nd.NativeMemory.Mode.REUSE;
        int copyBytes = p != Precision.F16 ? 0 : bf16 ? 2 : 4;
        StudentPlan plan = cfg.student().plan(c.numLayers());
        long mixers = 0;
        int mixerLayers = 0;
        for (String m : plan.layers()) {
            mixers += MixerRegistry.parameterCount(m, c.numHeads(), c.headDim(), c.hiddenSize(), cfg.student().settings());
            mixerLayers += m.equals("softmax") ? 0 : 1;
        }
        LoraConfig l = cfg.lora().toConfig();
        long lora = 0;
        for (Projection pr : l.projections()) {
            lora += (long) l.rank() * (pr.in(c) + pr.out(c)) * c.numLayers();
        }
        long b = cfg.data().batchSize();
        long t = cfg.data().seqLen();
        boolean recompute = cfg.stages().stream().filter(molt.pipeline.config.LoraFinetuneSpec.class::isInstance)
                .map(molt.pipeline.config.LoraFinetuneSpec.class::cast)
                .anyMatch(s -> s.recompute().equals("true") || (s.recompute().equals("auto") && p == Precision.F16));
        int featureDim = cfg.student().settings().featureDim();
        return new MemoryEstimate(BASE, frozen(c, p), 16 * mixers, 16 * lora,
                transferStep(c, copyBytes, b, t, tappedLayers(cfg, mixerLayers), featureDim, reuse),
                recompute ? recomputedLoraStep(c, copyBytes, b, t, featureDim, reuse) : loraStep(c, copyBytes, b, t, featureDim));
    }

    /**
     * The most mixer layers whose taps one attention-transfer step holds: all of them, or the largest layer group's
     * ({@code layer_groups: N} trains ceil(layers / N) at a time).
     */
    static int tappedLayers(RunConfig cfg, int mixerLayers) {
        int most = 0;
        for (var st : cfg.stages()) {
            if (st instanceof molt.pipeline.config.AttentionTransferSpec a) {
                int groups = Math.min(Math.max(1, a.layerGroups()), Math.max(1, mixerLayers));
                most = Math.max(most, (mixerLayers + groups - 1) / groups);
            }
        }
        return most == 0 ? mixerLayers : most;
    }

    /** Frozen weights: matrices at the precision's width, norms and biases F32, a tied F32 head's transposed copy. */
    static long frozen(LlamaConfig c, Precision p) {
        long embed = (long) c.vocabSize() * c.hiddenSize();
        long matrices = embed + c.numLayers() * layerWeights(c) + (c.tieWordEmbeddings() && p == Precision.F16 ? 0 : embed);
        long rest = molt.teacher.LlamaWeights.parameterCount(c) - embed * (c.tieWordEmbeddings() ? 1 : 2)
                - c.numLayers() * layerWeights(c);
        return p.bytes() * matrices + 4 * rest;
    }

    /** Weights of one layer's projections (q, k, v, o, gate, up, down). */
    public static long layerWeights(LlamaConfig c) {
        long w = 0;
        for (Projection pr : Projection.values()) {
            w += (long) pr.in(c) * pr.out(c);
        }
        return w;
    }

    /**
     * The temporary copy of one layer's projections that a product makes of 16-bit weights on CPU, at
     * {@code copyBytes} per value: 4 widened to F32, 2 rounded to BF16 ({@link molt.teacher.nd.Bf16Products}, CPUs
     * with AMX); 0 for F32 weights, used as they are.
     */
    private static long widenedLayer(LlamaConfig c, int copyBytes) {
        return copyBytes * layerWeights(c);
    }

    /**
     * One layer's forward arrays: norms, projections, RoPE, the MLP, and the [B, Hq, T, T] scores and weights unless
     * attention is fused ({@link molt.teacher.nd.FusedAttention}, which the teacher's forward uses when on).
     */
    private static long teacherLayer(LlamaConfig c, long b, long t) {
        long hq = c.numHeads();
        long scores = molt.teacher.nd.FusedAttention.enabled() ? 0 : 3 * hq * t * t;
        return 4 * b * (scores + t * (4L * c.intermediateSize() + 8L * c.hiddenSize()
                + 4L * c.numKvHeads() * c.headDim() * c.kvGroups()));
    }

    /** One mixer layer's forward kept for backward (feature maps, chunk blocks, states), per the Hedgehog forms. */
    private static long mixerLayer(LlamaConfig c, long b, long t, int featureDim) {
        return 4 * b * c.numHeads() * t * (12L * featureDim + 8L * c.headDim() + 12L * 64);
    }

    /**
     * Attention transfer: the teacher's taps for every mixer layer it trains at once (hidden, q, k, v, attention
     * output), one layer of the teacher's forward at a time (with its widened weights), and one mixer layer's forward
     * and backward (each layer's term is backpropagated before the next is computed). With {@code reuse} (the
     * allocator's {@link molt.teacher.nd.NativeMemory.Mode#REUSE}) the heap also holds the freed blocks of one more
     * such layer.
     */
    static long transferStep(LlamaConfig c, int copyBytes, long b, long t, int mixerLayers, int featureDim,
                             boolean reuse) {
        long hq = c.numHeads();
        long d = c.headDim();
        long taps = 4 * b * t * (c.hiddenSize() + 2 * hq * d + 2L * c.numKvHeads() * d) * mixerLayers;
        long layer = Math.max(teacherLayer(c, b, t) + widenedLayer(c, copyBytes), 2 * mixerLayer(c, b, t, featureDim));
        return taps + (reuse ? 2 : 1) * layer;
    }

    /** LoRA without recomputation: every layer's activations and widened weights kept for backward, whole logits. */
    static long loraStep(LlamaConfig c, int copyBytes, long b, long t, int featureDim) {
        // every array autograd keeps for backward, and the freed blocks glibc holds between them within the step
        // (calibrated: SmolLM2-135M shape, f32, 8.37 GiB measured)
        long perLayer = 4 * b * t * (24L * c.hiddenSize() + 6L * c.intermediateSize()) + 2 * mixerLayer(c, b, t, featureDim);
        long widened = copyBytes * (c.numLayers() * layerWeights(c) + (long) c.vocabSize() * c.hiddenSize());
        return c.numLayers() * perLayer + widened + 4 * 4 * b * t * c.vocabSize();
    }

    /**
     * LoRA with recomputation: the L + 1 layer inputs, one layer recomputed with its gradients and widened weights,
     * and one slice of positions through the LM head (logits, log-softmax and their gradients; a 16-bit head is
     * widened a block of 2^24 values at a time). With {@code reuse} the heap also holds the freed blocks of the larger
     * of the two once more.
     */
    static long recomputedLoraStep(LlamaConfig c, int copyBytes, long b, long t, int featureDim, boolean reuse) {
        long inputs = 4 * b * t * c.hiddenSize() * (c.numLayers() + 2L);
        long layer = 2 * (4 * b * t * (14L * c.hiddenSize() + 4L * c.intermediateSize()) + mixerLayer(c, b, t, featureDim))
                + widenedLayer(c, copyBytes);
        long positions = Math.min(t, Math.max(1, (1L << 26) / (b * c.vocabSize())));
        // logits, their gradient and the loss's arrays for one slice, and one block of the head's rows as F32 or BF16
        long head = 4 * 4 * b * positions * c.vocabSize() + copyBytes * (1L << 24);
        return inputs + (reuse ? 2 : 1) * Math.max(layer, head);
    }

    /** Peak of an attention-transfer step. */
    public long transferBytes() {
        return baseBytes + frozenBytes + mixerBytes + transferStepBytes;
    }

    /** Peak of a LoRA step. */
    public long loraBytes() {
        return baseBytes + frozenBytes + loraBytes + loraStepBytes;
    }

    /** The larger of the two. */
    public long peakBytes() {
        return Math.max(transferBytes(), loraBytes());
    }
}
