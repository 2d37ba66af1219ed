package molt.teacher;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;

/**
 * The architecture of a Llama-family model, read from a Hugging Face {@code config.json}. Derived values
 * (head dim, GQA group size) are computed once here. Accepted {@code model_type}s compute the same function as
 * transformers' {@code LlamaForCausalLM}: {@code llama}; {@code mistral} without a sliding window; {@code qwen2}
 * without sliding window (bias on q/k/v only).
 *
 * @param raw the config.json object as read, kept so exported students can carry the base config verbatim
 */
public record LlamaConfig(
        String modelType,
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        double rmsNormEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        int maxPositionEmbeddings,
        boolean tieWordEmbeddings,
        boolean qkvBias,
        boolean oBias,
        boolean mlpBias,
        long bosTokenId,
        long[] eosTokenIds,
        String torchDtype,
        ObjectNode raw) {

    public static final Set<String> MODEL_TYPES = Set.of("llama", "mistral", "qwen2");
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * RoPE frequency scaling as transformers applies it. {@code type} is {@code llama3} or {@code linear}.
     * Fields that a type does not use are 0.
     */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositionEmbeddings) {
    }

    public LlamaConfig {
        if (hiddenSize <= 0 || numLayers <= 0 || numHeads <= 0 || numKvHeads <= 0 || vocabSize <= 0
                || intermediateSize <= 0 || headDim <= 0) {
            throw new IllegalArgumentException("sizes must be positive");
        }
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads (" + numHeads
                    + ") must be a multiple of num_key_value_heads (" + numKvHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for rotary embeddings, found " + headDim);
        }
    }

    /** Query heads per key/value head. */
    public int kvGroups() {
        return numHeads / numKvHeads;
    }

    /** Width of the query projection output ({@code numHeads * headDim}). */
    public int qDim() {
        return numHeads * headDim;
    }

    /** Width of each of the key and value projection outputs. */
    public int kvDim() {
        return numKvHeads * headDim;
    }

    /** Reads {@code DIR/config.json}; every problem is an {@link InputException} naming the file. */
    public static LlamaConfig read(Path modelDir) {
        Path file = modelDir.resolve("config.json");
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new InputException(file, "missing (a model directory needs config.json)");
        } catch (IOException e) {
            throw new InputException(file, "not valid JSON: " + molt.teacher.io.JsonErrors.describe(e));
        }
        if (root == null || !root.isObject()) {
            throw new InputException(file, "expected a JSON object");
        }
        return fromJson((ObjectNode) root, file);
    }

    /** Builds a config from a parsed config.json object; {@code file} is named in errors. */
    public static LlamaConfig fromJson(ObjectNode root, Path file) {
        Fields f = new Fields(root, file);
        String type = modelType(f, root, file);
        String act = f.string("hidden_act", "silu");
        if (!act.equals("silu")) {
            throw new InputException(file, "unsupported hidden_act '" + act + "' (expected silu)");
        }
        int hidden = f.positiveInt("hidden_size");
        int heads = f.positiveInt("num_attention_heads");
        int kvHeads = root.has("num_key_value_heads") && !root.get("num_key_value_heads").isNull()
                ? f.positiveInt("num_key_value_heads") : heads;
        if (heads % kvHeads != 0) {
            throw new InputException(file, "num_attention_heads " + heads + " is not a multiple of num_key_value_heads "
                    + kvHeads);
        }
        int headDim = headDim(f, root, file, hidden, heads);
        boolean attentionBias = f.bool("attention_bias", false);
        boolean qkvBias = type.equals("qwen2") || attentionBias;
        boolean oBias = !type.equals("qwen2") && attentionBias;
        long[] eos = eosIds(root.get("eos_token_id"), file);
        long bos = root.hasNonNull("bos_token_id") ? f.nonNegativeLong("bos_token_id") : -1;
        return new LlamaConfig(type,
                f.positiveInt("vocab_size"),
                hidden,
                f.positiveInt("intermediate_size"),
                f.positiveInt("num_hidden_layers"),
                heads,
                kvHeads,
                headDim,
                f.positiveDouble("rms_norm_eps", 1e-6),
                f.positiveDouble("rope_theta", 10000.0),
                ropeScaling(root.get("rope_scaling"), file),
                root.hasNonNull("max_position_embeddings") ? f.positiveInt("max_position_embeddings") : 2048,
                f.bool("tie_word_embeddings", false),
                qkvBias,
                oBias,
                f.bool("mlp_bias", false),
                bos,
                eos,
                f.string("torch_dtype", "float32"),
                root.deepCopy());
    }

    /** The model_type, checked to be one whose math is Llama's (no sliding window). */
    private static String modelType(Fields f, ObjectNode root, Path file) {
        String type = f.string("model_type", null);
        if (type == null) {
            throw new InputException(file, "missing model_type (expected one of " + MODEL_TYPES + ")");
        }
        if (!MODEL_TYPES.contains(type)) {
            throw new InputException(file, "unsupported model_type '" + type + "' (expected one of "
                    + MODEL_TYPES + ")");
        }
        if (!type.equals("llama")) {
            JsonNode sw = root.get("sliding_window");
            boolean useSw = root.path("use_sliding_window").asBoolean(type.equals("mistral"));
            if (useSw && sw != null && !sw.isNull()) {
                throw new InputException(file, "model_type '" + type + "' with sliding_window " + sw
                        + " is not supported (only full attention computes Llama's function)");
            }
        }
        return type;
    }

    /** head_dim as given, or hidden / heads; even, for rotary embeddings. */
    private static int headDim(Fields f, ObjectNode root, Path file, int hidden, int heads) {
        int headDim;
        if (root.has("head_dim") && !root.get("head_dim").isNull()) {
            headDim = f.positiveInt("head_dim");
        } else {
            if (hidden % heads != 0) {
                throw new InputException(file, "hidden_size " + hidden + " is not divisible by num_attention_heads "
                        + heads + " and no head_dim is given");
            }
            headDim = hidden / heads;
        }
        if (headDim % 2 != 0) {
            throw new InputException(file, "head_dim must be even for rotary embeddings, found " + headDim);
        }
        return headDim;
    }

    private static RopeScaling ropeScaling(JsonNode node, Path file) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isObject()) {
            throw new InputException(file, "rope_scaling: expected an object or null, found " + node);
        }
        String type = node.hasNonNull("rope_type") ? node.get("rope_type").asText()
                : node.hasNonNull("type") ? node.get("type").asText() : null;
        if (type == null) {
            throw new InputException(file, "rope_scaling: missing rope_type");
        }
        Fields f = new Fields((ObjectNode) node, file, "rope_scaling.");
        switch (type) {
            case "default":
                return null;
            case "linear":
                return new RopeScaling("linear", f.positiveDouble("factor", Double.NaN), 0, 0, 0);
            case "llama3": {
                RopeScaling r = new RopeScaling("llama3",
                        f.positiveDouble("factor", Double.NaN),
                        f.positiveDouble("low_freq_factor", Double.NaN),
                        f.positiveDouble("high_freq_factor", Double.NaN),
                        f.positiveInt("original_max_position_embeddings"));
                if (r.highFreqFactor() <= r.lowFreqFactor()) {
                    throw new InputException(file, "rope_scaling: high_freq_factor (" + r.highFreqFactor()
                            + ") must exceed low_freq_factor (" + r.lowFreqFactor() + ")");
                }
                return r;
            }
            default:
                throw new InputException(file, "unsupported rope_scaling type '" + type
                        + "' (expected llama3, linear or none)");
        }
    }

    private static long[] eosIds(JsonNode node, Path file) {
        if (node == null || node.isNull()) {
            return new long[0];
        }
        if (node.isIntegralNumber()) {
            return new long[] {node.asLong()};
        }
        if (node.isArray()) {
            long[] ids = new long[node.size()];
            for (int i = 0; i < ids.length; i++) {
                if (!node.get(i).isIntegralNumber()) {
                    throw new InputException(file, "eos_token_id: expected integers, found " + node);
                }
                ids[i] = node.get(i).asLong();
            }
            return ids;
        }
        throw new InputException(file, "eos_token_id: expected an integer or a list, found " + node);
    }

    /** Typed access to config.json fields with errors that name the file and the key. */
    private record Fields(ObjectNode root, Path file, String prefix) {
        Fields(ObjectNode root, Path file) {
            this(root, file, "");
        }

        private JsonNode need(String key) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                throw new InputException(file, "missing " + prefix + key);
            }
            return n;
        }

        int positiveInt(String key) {
            JsonNode n = need(key);
            if (!n.isIntegralNumber() || n.asLong() <= 0 || n.asLong() > Integer.MAX_VALUE) {
                throw new InputException(file, prefix + key + ": expected a positive integer, found " + n);
            }
            return n.asInt();
        }

        long nonNegativeLong(String key) {
            JsonNode n = need(key);
            if (!n.isIntegralNumber() || n.asLong() < 0) {
                throw new InputException(file, prefix + key + ": expected a non-negative integer, found " + n);
            }
            return n.asLong();
        }

        double positiveDouble(String key, double dflt) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                if (Double.isNaN(dflt)) {
                    throw new InputException(file, "missing " + prefix + key);
                }
                return dflt;
            }
            if (!n.isNumber() || !(n.asDouble() > 0) || Double.isInfinite(n.asDouble())) {
                throw new InputException(file, prefix + key + ": expected a positive number, found " + n);
            }
            return n.asDouble();
        }

        boolean bool(String key, boolean dflt) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                return dflt;
            }
            if (!n.isBoolean()) {
                throw new InputException(file, prefix + key + ": expected true or false, found " + n);
            }
            return n.asBoolean();
        }

        String string(String key, String dflt) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                return dflt;
            }
            if (!n.isTextual()) {
                throw new InputException(file, prefix + key + ": expected a string, found " + n);
            }
            return n.asText();
        }
    }
}
