package molt.teacher;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The linear projections of a Llama decoder layer: the attention's q, k, v and o and the MLP's gate, up and
 * down, with their short names (as configs and LoRA targets name them), their Hugging Face module names and their
 * sizes.
 */
public enum Projection {
    Q("q", "self_attn.q_proj"),
    K("k", "self_attn.k_proj"),
    V("v", "self_attn.v_proj"),
    O("o", "self_attn.o_proj"),
    GATE("gate", "mlp.gate_proj"),
    UP("up", "mlp.up_proj"),
    DOWN("down", "mlp.down_proj");

    private final String shortName;
    private final String module;

    Projection(String shortName, String module) {
        this.shortName = shortName;
        this.module = module;
    }

    /** The short name: q, k, v, o, gate, up or down. */
    public String shortName() {
        return shortName;
    }

    /** The checkpoint name prefix in layer i, e.g. {@code model.layers.3.self_attn.q_proj.}. */
    public String prefix(int layer) {
        return LlamaWeights.layer(layer, module + ".");
    }

    /** Input features. */
    public int in(LlamaConfig c) {
        return switch (this) {
            case Q, K, V, GATE, UP -> c.hiddenSize();
            case O -> c.qDim();
            case DOWN -> c.intermediateSize();
        };
    }

    /** Output features. */
    public int out(LlamaConfig c) {
        return switch (this) {
            case Q -> c.qDim();
            case K, V -> c.kvDim();
            case O, DOWN -> c.hiddenSize();
            case GATE, UP -> c.intermediateSize();
        };
    }

    /** The short names of all projections, in layer order. */
    public static List<String> shortNames() {
        return Arrays.stream(values()).map(Projection::shortName).collect(Collectors.toList());
    }

    /** The projection with this short name; an IllegalArgumentException naming the known ones otherwise. */
    public static Projection of(String shortName) {
        for (Projection p : values()) {
            if (p.shortName.equals(shortName)) {
                return p;
            }
        }
        throw new IllegalArgumentException("'" + shortName + "' is not one of " + shortNames());
    }
}
