package molt.teacher;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import molt.teacher.io.TensorInfo;
import molt.teacher.io.WeightSource;

/**
 * The Hugging Face tensor names and shapes of a Llama-family checkpoint, and the check that a checkpoint holds
 * exactly those: every missing, unexpected and mis-shaped tensor is reported together, with expected vs found.
 */
public final class LlamaWeights {
    private static final int MAX_LISTED = 12;

    private LlamaWeights() {
    }

    public static String layer(int i, String suffix) {
        return "model.layers." + i + "." + suffix;
    }

    /** Every expected tensor name with its shape, in the checkpoint's natural order. */
    public static Map<String, long[]> expected(LlamaConfig c) {
        Map<String, long[]> m = new LinkedHashMap<>();
        long h = c.hiddenSize();
        m.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
        for (int i = 0; i < c.numLayers(); i++) {
            m.put(layer(i, "input_layernorm.weight"), new long[] {h});
            m.put(layer(i, "self_attn.q_proj.weight"), new long[] {c.qDim(), h});
            m.put(layer(i, "self_attn.k_proj.weight"), new long[] {c.kvDim(), h});
            m.put(layer(i, "self_attn.v_proj.weight"), new long[] {c.kvDim(), h});
            m.put(layer(i, "self_attn.o_proj.weight"), new long[] {h, c.qDim()});
            if (c.qkvBias()) {
                m.put(layer(i, "self_attn.q_proj.bias"), new long[] {c.qDim()});
                m.put(layer(i, "self_attn.k_proj.bias"), new long[] {c.kvDim()});
                m.put(layer(i, "self_attn.v_proj.bias"), new long[] {c.kvDim()});
            }
            if (c.oBias()) {
                m.put(layer(i, "self_attn.o_proj.bias"), new long[] {h});
            }
            m.put(layer(i, "post_attention_layernorm.weight"), new long[] {h});
            m.put(layer(i, "mlp.gate_proj.weight"), new long[] {c.intermediateSize(), h});
            m.put(layer(i, "mlp.up_proj.weight"), new long[] {c.intermediateSize(), h});
            m.put(layer(i, "mlp.down_proj.weight"), new long[] {h, c.intermediateSize()});
            if (c.mlpBias()) {
                m.put(layer(i, "mlp.gate_proj.bias"), new long[] {c.intermediateSize()});
                m.put(layer(i, "mlp.up_proj.bias"), new long[] {c.intermediateSize()});
                m.put(layer(i, "mlp.down_proj.bias"), new long[] {h});
            }
        }
        m.put("model.norm.weight", new long[] {h});
        if (!c.tieWordEmbeddings()) {
            m.put("lm_head.weight", new long[] {c.vocabSize(), h});
        }
        return m;
    }

    /** Total parameter count of the architecture (computed, so an absurd layer count costs nothing). */
    public static long parameterCount(LlamaConfig c) {
        long h = c.hiddenSize();
        long qkv = h * c.qDim() + 2 * h * c.kvDim() + (c.qkvBias() ? c.qDim() + 2L * c.kvDim() : 0);
        long o = (long) c.qDim() * h + (c.oBias() ? h : 0);
        long mlp = 3 * h * c.intermediateSize() + (c.mlpBias() ? 2L * c.intermediateSize() + h : 0);
        long layer = 2 * h + qkv + o + mlp;
        long embed = (long) c.vocabSize() * h;
        return embed + c.numLayers() * layer + h + (c.tieWordEmbeddings() ? 0 : embed);
    }

    /** The number of decoder layers whose tensors a checkpoint holds (highest {@code model.layers.i} + 1). */
    static int layersIn(WeightSource w) {
        int n = 0;
        for (String name : w.names()) {
            if (name.startsWith("model.layers.")) {
                int dot = name.indexOf('.', "model.layers.".length());
                try {
                    n = Math.max(n, Integer.parseInt(name.substring("model.layers.".length(), dot)) + 1);
                } catch (NumberFormatException | StringIndexOutOfBoundsException e) {
                    // not a layer tensor: reported as unexpected below
                }
            }
        }
        return n;
    }

    /** Checks names and shapes; throws one {@link InputException} listing every problem. */
    public static void validate(LlamaConfig c, WeightSource w) {
        int held = layersIn(w);
        if (c.numLayers() > held) {
            throw new InputException(w.origin(), "config.json has num_hidden_layers " + c.numLayers()
                    + " but the weights hold " + held + " layer(s)");
        }
        Map<String, long[]> want = expected(c);
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, long[]> e : want.entrySet()) {
            if (!w.contains(e.getKey())) {
                problems.add(e.getKey() + ": missing (expected " + Arrays.toString(e.getValue()) + ")");
                continue;
            }
            TensorInfo info = w.info(e.getKey());
            if (!Arrays.equals(info.shape(), e.getValue())) {
                problems.add(e.getKey() + ": expected " + Arrays.toString(e.getValue()) + ", found "
                        + info.shapeString());
            } else if (!info.dtype().isFloat()) {
                problems.add(e.getKey() + ": expected a floating-point dtype, found " + info.dtype());
            }
        }
        for (String n : w.names()) {
            boolean harmless = n.endsWith(".rotary_emb.inv_freq")
                    || (c.tieWordEmbeddings() && n.equals("lm_head.weight")
                        && Arrays.equals(w.info(n).shape(), new long[] {c.vocabSize(), c.hiddenSize()}));
            if (!want.containsKey(n) && !harmless) {
                problems.add(n + ": unexpected tensor " + w.info(n).dtype() + " " + w.info(n).shapeString());
            }
        }
        if (problems.isEmpty() && c.tieWordEmbeddings() && w.contains("lm_head.weight")) {
            checkTiedCopy(w);
        }
        if (!problems.isEmpty()) {
            String listed = String.join("; ", problems.subList(0, Math.min(MAX_LISTED, problems.size())));
            String more = problems.size() > MAX_LISTED ? "; and " + (problems.size() - MAX_LISTED) + " more" : "";
            throw new InputException(w.origin(), problems.size() + " tensor problem(s) for " + c.modelType() + " with "
                    + c.numLayers() + " layers: " + listed + more);
        }
    }

    /**
     * With tied embeddings an {@code lm_head.weight} in the checkpoint must be a copy of the embedding (it is not
     * used): a different one would silently change the model.
     */
    private static void checkTiedCopy(WeightSource w) {
        float[] embed = w.readFloats("model.embed_tokens.weight");
        float[] head = w.readFloats("lm_head.weight");
        for (int i = 0; i < embed.length; i++) {
            if (Float.floatToIntBits(embed[i]) != Float.floatToIntBits(head[i])) {
                throw new InputException(w.origin(), "tie_word_embeddings is true but lm_head.weight differs from "
                        + "model.embed_tokens.weight (first at element " + i + ": " + head[i] + " vs " + embed[i]
                        + "); set tie_word_embeddings to false or remove lm_head.weight");
            }
        }
    }
}
