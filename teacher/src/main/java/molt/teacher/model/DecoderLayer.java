package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Map;
import molt.teacher.LlamaConfig;
import molt.teacher.Projection;

/**
 * One Llama decoder layer, written once for the teacher and every student, training and decoding alike:
 *
 * <pre>
 *   xn = rmsnorm(h);  q, k, v = proj(xn) (RoPE on q, k);  a = core(q, k, v);  x = h + o_proj(a)
 *   out = x + down(silu(gate(rmsnorm(x))) * up(rmsnorm(x)))
 * </pre>
 *
 * What differs between models and modes lives in the attention core (softmax or a mixer) and in the
 * {@link LayerPass} (projector with or without LoRA, parallel or recurrent form, taps). The layer's frozen weights
 * are reached only through here. Projection weights are held transposed, [in, out]; biases may be null.
 *
 * <p>Shapes: B batch, T time, H hidden, Hq query heads, Hkv key/value heads, D head dim.
 */
public final class DecoderLayer {
    private final int index;
    private final LlamaConfig config;
    private final Rope rope;
    private final Frozen frozen;
    private final NDArray inputNorm;
    private final NDArray postNorm;
    private final NDArray[] weightsT = new NDArray[Projection.values().length];
    private final NDArray[] biases = new NDArray[Projection.values().length];

    /**
     * Layer {@code index} over the model's stored arrays (by Hugging Face name, projections transposed), using
     * 16-bit ones as {@code frozen} says.
     */
    DecoderLayer(int index, LlamaConfig config, Rope rope, Map<String, NDArray> stored, Frozen frozen) {
        this.index = index;
        this.config = config;
        this.rope = rope;
        this.frozen = frozen;
        this.inputNorm = stored.get(molt.teacher.LlamaWeights.layer(index, "input_layernorm.weight"));
        this.postNorm = stored.get(molt.teacher.LlamaWeights.layer(index, "post_attention_layernorm.weight"));
        for (Projection p : Projection.values()) {
            weightsT[p.ordinal()] = stored.get(p.prefix(index) + "weight");
            biases[p.ordinal()] = stored.get(p.prefix(index) + "bias");
        }
    }

    /**
     * The whole layer on h [B, T, H] at positions pass.start().. -> [B, T, H], created in {@code scope} (or the
     * inputs' manager). Returns h unchanged after the core when the pass needs nothing past this layer's attention.
     */
    public NDArray forward(NDManager scope, NDArray h, AttentionCore core, LayerPass pass) {
        NDArray xn = LlamaBlocks.rmsNorm(h, inputNorm, config.rmsNormEps());
        AttentionInput in = input(scope, xn, pass.projector(), pass.start());
        NDArray heads = pass.attend(scope, index, core, in); // [B, Hq, T, D]
        NDArray perHead = heads.transpose(0, 2, 1, 3); // [B, T, Hq, D]
        pass.record(index, h, in, core, perHead);
        if (!pass.needsOutput(index)) {
            return h;
        }
        return tail(scope, h, perHead, pass.projector());
    }

    /** Normed input xn [B, T, H] to the core's input at positions start..: q, k after RoPE, GQA left to the core. */
    private AttentionInput input(NDManager scope, NDArray xn, Projector p, long start) {
        NDArray q = LlamaBlocks.splitHeads(project(scope, p, Projection.Q, xn), config.numHeads()); // [B, Hq, T, D]
        NDArray k = LlamaBlocks.splitHeads(project(scope, p, Projection.K, xn), config.numKvHeads()); // [B, Hkv, T, D]
        NDArray v = LlamaBlocks.splitHeads(project(scope, p, Projection.V, xn), config.numKvHeads()); // [B, Hkv, T, D]
        int t = Math.toIntExact(q.getShape().get(2));
        NDArray cos = rope.cos(scope, start, t);
        NDArray sin = rope.sin(scope, start, t);
        return AttentionInput.grouped(xn, Rope.apply(q, cos, sin), Rope.apply(k, cos, sin), v, q, k,
                config.kvGroups());
    }

    /**
     * The core's input rebuilt from a teacher recording (attention transfer): hidden [B, T, H] entering the layer
     * (may be null), q [B, Hq, T, D] and k [B, Hkv, T, D] after RoPE at positions 0.., v [B, Hkv, T, D]. q and k
     * before RoPE are the recorded ones rotated back, for cores that drop RoPE.
     */
    public AttentionInput recordedInput(NDManager scope, NDArray hidden, NDArray q, NDArray k, NDArray v) {
        int t = Math.toIntExact(q.getShape().get(2));
        NDArray cos = rope.cos(scope, 0, t);
        NDArray sin = rope.sin(scope, 0, t);
        NDArray xn = hidden == null ? null : LlamaBlocks.rmsNorm(hidden, inputNorm, config.rmsNormEps());
        return AttentionInput.grouped(xn, q, k, v, Rope.unapply(q, cos, sin), Rope.unapply(k, cos, sin),
                config.kvGroups());
    }

    /** The rest of the layer after the core: o_proj, residual, post-norm, MLP, residual. */
    private NDArray tail(NDManager scope, NDArray h, NDArray perHead, Projector p) {
        Shape s = perHead.getShape();
        NDArray merged = perHead.reshape(s.get(0), s.get(1), s.get(2) * s.get(3)); // [B, T, Hq*D]
        NDArray x = h.add(project(scope, p, Projection.O, merged));
        NDArray xn = LlamaBlocks.rmsNorm(x, postNorm, config.rmsNormEps());
        return x.add(mlp(scope, xn, p));
    }

    /** The SwiGLU MLP: down(silu(gate(x)) * up(x)). */
    private NDArray mlp(NDManager scope, NDArray x, Projector p) {
        NDArray gate = project(scope, p, Projection.GATE, x);
        NDArray up = project(scope, p, Projection.UP, x);
        NDArray act = gate.mul(gate.getNDArrayInternal().sigmoid()).mul(up);
        return project(scope, p, Projection.DOWN, act);
    }

    /** A projection through {@code p}; a 16-bit weight is made usable in {@code scope} first (see {@link Frozen}). */
    private NDArray project(NDManager scope, Projector p, Projection target, NDArray x) {
        return p.project(index, target, x, frozen.use(scope, weightsT[target.ordinal()]), biases[target.ordinal()]);
    }
}
