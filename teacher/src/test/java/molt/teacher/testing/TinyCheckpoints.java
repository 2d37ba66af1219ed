package molt.teacher.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.io.DType;
import molt.teacher.io.SafetensorsWriter;

/**
 * Writes small random Llama checkpoints in the Hugging Face layout (config.json + model.safetensors, or shards
 * with model.safetensors.index.json) for tests. Deterministic from the seed.
 */
public final class TinyCheckpoints {
    private static final ObjectMapper JSON = new ObjectMapper();

    private int vocab = 64;
    private int hidden = 32;
    private int layers = 2;
    private int heads = 4;
    private int kvHeads = 2;
    private Integer headDim;
    private int maxPositions = 4096;
    private int intermediate = 48;
    private boolean tie;
    private boolean attentionBias;
    private boolean mlpBias;
    private String modelType = "llama";
    private double ropeTheta = 10000;
    private ObjectNode ropeScaling;
    private double eps = 1e-5;
    private DType dtype = DType.F32;
    private int shards = 1;
    private long seed = 1;
    private double scale = 0.08;
    private final Map<String, Double> tensorScales = new java.util.HashMap<>();

    /** {@code t} seeded random token ids below {@code vocab}. */
    public static long[] randomTokens(int t, int vocab, long seed) {
        java.util.Random r = new java.util.Random(seed);
        long[] x = new long[t];
        for (int i = 0; i < t; i++) {
            x[i] = r.nextInt(vocab);
        }
        return x;
    }

    public static TinyCheckpoints builder() {
        return new TinyCheckpoints();
    }

    public TinyCheckpoints vocab(int v) { vocab = v; return this; }
    public TinyCheckpoints hidden(int v) { hidden = v; return this; }
    public TinyCheckpoints layers(int v) { layers = v; return this; }
    public TinyCheckpoints heads(int h, int kv) { heads = h; kvHeads = kv; return this; }
    public TinyCheckpoints headDim(int v) { headDim = v; return this; }
    public TinyCheckpoints intermediate(int v) { intermediate = v; return this; }
    public TinyCheckpoints tie(boolean v) { tie = v; return this; }
    public TinyCheckpoints attentionBias(boolean v) { attentionBias = v; return this; }
    public TinyCheckpoints mlpBias(boolean v) { mlpBias = v; return this; }
    public TinyCheckpoints modelType(String v) { modelType = v; return this; }
    public TinyCheckpoints ropeTheta(double v) { ropeTheta = v; return this; }
    public TinyCheckpoints eps(double v) { eps = v; return this; }
    public TinyCheckpoints dtype(DType v) { dtype = v; return this; }
    public TinyCheckpoints shards(int v) { shards = v; return this; }
    public TinyCheckpoints seed(long v) { seed = v; return this; }
    public TinyCheckpoints maxPositions(int v) { maxPositions = v; return this; }
    public TinyCheckpoints scale(double v) { scale = v; return this; }
    /** Multiplies one tensor's random values by {@code factor} (e.g. to make one layer's attention sharper). */
    public TinyCheckpoints scaleTensor(String name, double factor) { tensorScales.put(name, factor); return this; }

    public TinyCheckpoints llama3Scaling(double factor, double low, double high, int originalMax) {
        ropeScaling = JSON.createObjectNode().put("rope_type", "llama3").put("factor", factor)
                .put("low_freq_factor", low).put("high_freq_factor", high)
                .put("original_max_position_embeddings", originalMax);
        return this;
    }

    public TinyCheckpoints linearScaling(double factor) {
        ropeScaling = JSON.createObjectNode().put("type", "linear").put("factor", factor);
        return this;
    }

    /** The config.json object this builder writes. */
    public ObjectNode configJson() {
        ObjectNode c = JSON.createObjectNode();
        c.put("model_type", modelType);
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("vocab_size", vocab);
        c.put("hidden_size", hidden);
        c.put("intermediate_size", intermediate);
        c.put("num_hidden_layers", layers);
        c.put("num_attention_heads", heads);
        c.put("num_key_value_heads", kvHeads);
        if (headDim != null) {
            c.put("head_dim", headDim);
        }
        c.put("rms_norm_eps", eps);
        c.put("rope_theta", ropeTheta);
        if (ropeScaling != null) {
            c.set("rope_scaling", ropeScaling);
        } else {
            c.putNull("rope_scaling");
        }
        c.put("max_position_embeddings", maxPositions);
        c.put("tie_word_embeddings", tie);
        c.put("attention_bias", attentionBias);
        c.put("mlp_bias", mlpBias);
        c.put("hidden_act", "silu");
        c.put("bos_token_id", 1);
        c.put("eos_token_id", 2);
        c.put("torch_dtype", dtype == DType.BF16 ? "bfloat16" : dtype == DType.F16 ? "float16" : "float32");
        return c;
    }

    /** Random weights by name: norms near 1, everything else N(0, scale^2). */
    public Map<String, float[]> weights() {
        LlamaConfig c = LlamaConfig.fromJson(configJson(), Path.of("config.json"));
        Random r = new Random(seed);
        Map<String, float[]> w = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : LlamaWeights.expected(c).entrySet()) {
            long n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            float[] v = new float[Math.toIntExact(n)];
            boolean isNorm = e.getKey().endsWith("norm.weight");
            for (int i = 0; i < v.length; i++) {
                v[i] = isNorm ? (float) (1 + 0.1 * r.nextGaussian()) : (float) (scale * r.nextGaussian());
            }
            double f = tensorScales.getOrDefault(e.getKey(), 1.0);
            for (int i = 0; f != 1.0 && i < v.length; i++) {
                v[i] = (float) (v[i] * f);
            }
            w.put(e.getKey(), v);
        }
        return w;
    }

    /** Writes config.json and the weights into {@code dir} (created if needed) and returns it. */
    public Path write(Path dir) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter()
                    .writeValueAsString(configJson()));
            LlamaConfig c = LlamaConfig.read(dir);
            Map<String, long[]> shapes = LlamaWeights.expected(c);
            Map<String, float[]> w = weights();
            List<SafetensorsWriter.Tensor> all = new ArrayList<>();
            for (Map.Entry<String, float[]> e : w.entrySet()) {
                all.add(SafetensorsWriter.Tensor.ofFloats(e.getKey(), dtype, shapes.get(e.getKey()), e.getValue()));
            }
            if (shards == 1) {
                SafetensorsWriter.write(dir.resolve("model.safetensors"), all, Map.of("format", "pt"));
                return dir;
            }
            ObjectNode index = JSON.createObjectNode();
            index.putObject("metadata").put("total_size", 0);
            ObjectNode map = index.putObject("weight_map");
            int per = (all.size() + shards - 1) / shards;
            for (int s = 0; s < shards; s++) {
                String file = String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
                List<SafetensorsWriter.Tensor> part = all.subList(Math.min(all.size(), s * per),
                        Math.min(all.size(), (s + 1) * per));
                part.forEach(t -> map.put(t.name(), file));
                SafetensorsWriter.write(dir.resolve(file), part, Map.of("format", "pt"));
            }
            Files.writeString(dir.resolve("model.safetensors.index.json"),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsString(index));
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
