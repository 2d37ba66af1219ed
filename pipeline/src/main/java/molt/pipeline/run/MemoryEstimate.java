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
    /** The JVM, libtorch and molt's own classes and buffers, measured idle (RSS before the teacher loads). */
    static final long BASE = 400L << 20;

    public static MemoryEstimate of(RunConfig cfg, LlamaConfig c) {
        Precision p = cfg.precision().equals("auto") ? Precision.auto(molt.teacher.LlamaWeights.parameterCount(c))
                : cfg.frozenPrecision();
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
        return new MemoryEstimate(BASE, frozen(c, p), 16 * mixers, 16 * lora,
                transferStep(c, p, b, t, mixerLayers, cfg.student().settings().featureDim()),
                loraStep(c, p, b, t));
    }

    /** Frozen weights: matrices at the precision's width, norms and biases F32, a tied F32 head's transposed copy. */
    static long frozen(LlamaConfig c, Precision p) {
        long matrices = (long) c.vocabSize() * c.hiddenSize() + c.numLayers() * layerWeights(c)
                + (c.tieWordEmbeddings() && p == Precision.F16 ? 0 : (long) c.vocabSize() * c.hiddenSize());
        long rest = molt.teacher.LlamaWeights.parameterCount(c) - (long) c.vocabSize() * c.hiddenSize()
                * (c.tieWordEmbeddings() ? 1 : 2) - c.numLayers() * layerWeights(c);
        return p.bytes() * matrices + 4 * rest;
    }

    static long layerWeights(LlamaConfig c) {
        long w = 0;
        for (Projection pr : Projection.values()) {
            w += (long) pr.in(c) * pr.out(c);
        }
        return w;
    }

    /**
     * Attention transfer: the teacher's taps for every mixer layer (hidden, q, k, v, attention output), one layer of
     * the teacher's forward at a time (its [B, Hq, T, T] scores, MLP and, for 16-bit weights, the widened layer), and
     * every mixer's forward kept for backward.
     */
    static long transferStep(LlamaConfig c, Precision p, long b, long t, int mixerLayers, int featureDim) {
        long hq = c.numHeads();
        long d = c.headDim();
        long taps = 4 * b * t * (c.hiddenSize() + 2 * hq * d + 2L * c.numKvHeads() * d) * mixerLayers;
        long teacherLayer = 4 * b * (3 * hq * t * t + t * (4L * c.intermediateSize() + 6L * c.hiddenSize()))
                + (p == Precision.F16 ? 4 * layerWeights(c) : 0);
        long mixer = 4 * b * hq * t * (8L * featureDim + 6 * d) * mixerLayers;
        return taps + teacherLayer + mixer;
    }

    /**
     * LoRA: every layer's activations kept for backward (and, for 16-bit weights, every widened layer with them),
     * plus the logits, their log-softmax and gradients.
     */
    static long loraStep(LlamaConfig c, Precision p, long b, long t) {
        long perLayer = 4 * b * t * (14L * c.hiddenSize() + 4L * c.intermediateSize());
        long widened = p == Precision.F16 ? 4 * (c.numLayers() * layerWeights(c) + (long) c.vocabSize() * c.hiddenSize()) : 0;
        return c.numLayers() * perLayer + widened + 4 * 4 * b * t * c.vocabSize();
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
