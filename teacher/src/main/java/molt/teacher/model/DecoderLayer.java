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
     * What every layer of one pass shares: the batch B, the tokens T and RoPE's tables cos and sin [T, D] for the
     * pass's positions, made once per pass (not per layer).
     */
    public record Positions(long batch, long time, NDArray cos, NDArray sin) {
        /** For tokens [B, T] at positions start.., the tables created in {@code scope}. */
        static Positions of(NDManager scope, Rope rope, int batch, int time, long start) {
            return new Positions(batch, time, rope.cos(scope, start, time), rope.sin(scope, start, time));
        }
    }

    /**
     * The whole layer on h [B, T, H] at positions pass.start().. -> [B, T, H], created in {@code scope} (or the
     * inputs' manager). Returns h unchanged after the core when the pass needs nothing past this layer's attention.
     */
    public NDArray forward(NDManager scope, NDArray h, AttentionCore core, LayerPass pass) {
        Shape s = h.getShape();
        return forward(scope, h, core, pass,
                Positions.of(scope, rope, Math.toIntExact(s.get(0)), Math.toIntExact(s.get(1)), pass.start()));
    }

    /** {@link #forward} with the pass's shared {@link Positions}. */
    public NDArray forward(NDManager scope, NDArray h, AttentionCore core, LayerPass pass, Positions at) {
        boolean inPlace = pass.inPlace();
        NDArray xn = LlamaBlocks.rmsNorm(h, inputNorm, config.rmsNormEps(), inPlace);
        AttentionInput in = input(scope, xn, pass.projector(), at, inPlace);
        NDArray heads = pass.attend(scope, index, core, in); // [B, Hq, T, D]
        NDArray perHead = at.time() == 1
                ? heads.reshape(at.batch(), 1, config.numHeads(), config.headDim()) // [B, 1, Hq, D]: the transpose's layout
                : heads.transpose(0, 2, 1, 3); // [B, T, Hq, D]
        pass.record(index, h, in, core, perHead);
        if (!pass.needsOutput(index)) {
            return h;
        }
        return tail(scope, h, perHead, pass.projector(), at, inPlace);
    }

    /** Normed input xn [B, T, H] to the core's input at the pass's positions: q, k after RoPE, GQA left to the core. */
    private AttentionInput input(NDManager scope, NDArray xn, Projector p, Positions at, boolean inPlace) {
        long b = at.batch();
        long t = at.time();
        long d = config.headDim();
        NDArray q = LlamaBlocks.splitHeads(project(scope, p, Projection.Q, xn), b, t, config.numHeads(), d); // [B, Hq, T, D]
        NDArray k = LlamaBlocks.splitHeads(project(scope, p, Projection.K, xn), b, t, config.numKvHeads(), d); // [B, Hkv, T, D]
        NDArray v = LlamaBlocks.splitHeads(project(scope, p, Projection.V, xn), b, t, config.numKvHeads(), d); // [B, Hkv, T, D]
        return AttentionInput.grouped(xn, Rope.apply(q, at.cos(), at.sin(), d, inPlace),
                Rope.apply(k, at.cos(), at.sin(), d, inPlace), v, q, k, config.kvGroups());
    }

    /**
     * The core's input rebuilt from a teacher recording (attention transfer): hidden [B, T, H] entering the layer
     * (may be null), q [B, Hq, T, D] and k [B, Hkv, T, D] after RoPE at positions 0.., v [B, Hkv, T, D]. q and k
     * before RoPE are the recorded ones rotated back, for cores that drop RoPE; they and the normed input are computed
     * only if the core reads them.
     */
    public AttentionInput recordedInput(NDManager scope, NDArray hidden, NDArray q, NDArray k, NDArray v) {
        int t = Math.toIntExact(q.getShape().get(2));
        NDArray[] tables = new NDArray[2]; // RoPE's cos and sin [T, D], made once, when q or k is first rotated back
        java.util.function.UnaryOperator<NDArray> unrotate = x -> {
            if (tables[0] == null) {
                tables[0] = rope.cos(scope, 0, t);
                tables[1] = rope.sin(scope, 0, t);
            }
            return Rope.unapply(x, tables[0], tables[1]);
        };
        return AttentionInput.recorded(
                () -> hidden == null ? null : LlamaBlocks.rmsNorm(hidden, inputNorm, config.rmsNormEps()), q, k, v,
                () -> unrotate.apply(q), () -> unrotate.apply(k), config.kvGroups());
    }

    /**
     * The rest of the layer after the core: o_proj, residual, post-norm, MLP, residual. With {@code inPlace} the
     * residual sums go into the projections' outputs (o + h is h + o bit for bit) and the MLP's products into its
     * sigmoid.
     */
    private NDArray tail(NDManager scope, NDArray h, NDArray perHead, Projector p, Positions at, boolean inPlace) {
        NDArray merged = perHead.reshape(at.batch(), at.time(), (long) config.numHeads() * config.headDim()); // [B, T, Hq*D]
        NDArray o = project(scope, p, Projection.O, merged);
        NDArray x = inPlace ? o.addi(h) : h.add(o);
        NDArray xn = LlamaBlocks.rmsNorm(x, postNorm, config.rmsNormEps(), inPlace);
        NDArray m = mlp(scope, xn, p, inPlace);
        return inPlace ? m.addi(x) : x.add(m);
    }

    /** The SwiGLU MLP: down(silu(gate(x)) * up(x)). */
    private NDArray mlp(NDManager scope, NDArray x, Projector p, boolean inPlace) {
        NDArray gate = project(scope, p, Projection.GATE, x);
        NDArray up = project(scope, p, Projection.UP, x);
        NDArray act = inPlace ? gate.getNDArrayInternal().sigmoid().muli(gate).muli(up) // (sig * gate) * up
                : gate.mul(gate.getNDArrayInternal().sigmoid()).mul(up);
        return project(scope, p, Projection.DOWN, act);
    }

    /** A projection through {@code p}; a 16-bit weight is made usable in {@code scope} first (see {@link Frozen}). */
    private NDArray project(NDManager scope, Projector p, Projection target, NDArray x) {
        return p.project(index, target, x, frozen.use(scope, weightsT[target.ordinal()]), biases[target.ordinal()]);
    }
}
