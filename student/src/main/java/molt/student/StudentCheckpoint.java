package molt.student;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import molt.student.lora.LoraAdapter;
import molt.student.lora.LoraConfig;
import molt.student.mixer.MixerSettings;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.Projection;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.Checkpoints;
import molt.teacher.io.DType;
import molt.teacher.io.JsonErrors;
import molt.teacher.io.SafetensorsWriter;
import molt.teacher.io.TensorInfo;
import molt.teacher.io.WeightSource;
import molt.teacher.model.LlamaModel;

/**
 * Student checkpoint directories: {@code config.json} ({@code model_type: molt_student}, the base model's config,
 * the plan, mixer and LoRA settings, the base model's identity: path and SHA-256 of its weights), the weights as
 * {@code model.safetensors}, and the base model's tokenizer files. Weights are either {@code merged} (every
 * teacher tensor with LoRA folded in, plus the mixers: the directory stands alone) or {@code adapters} (only the
 * mixers and LoRA; loading checks the referenced base model's hash).
 */
public final class StudentCheckpoint {
    public static final String MODEL_TYPE = "molt_student";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json");

    private StudentCheckpoint() {
    }

    /** The base model's storage dtype from its {@code torch_dtype}. */
    public static DType baseDtype(LlamaConfig c) {
        return switch (c.torchDtype()) {
            case "bfloat16" -> DType.BF16;
            case "float16" -> DType.F16;
            default -> DType.F32;
        };
    }

    /**
     * Writes {@code student} to {@code dir}. {@code merged} folds LoRA into the teacher weights and writes them
     * all; otherwise only mixers and adapters are written. {@code dtype} null means the base model's dtype.
     * {@code extra} is stored under {@code "molt"} in config.json (resolved run config, versions).
     */
    public static void export(StudentModel student, Path dir, boolean merged, DType dtype, ObjectNode extra)
            throws IOException {
        Path baseDir = student.baseDir();
        if (baseDir == null) {
            throw new IllegalArgumentException("export needs the base model's directory");
        }
        DType out = dtype == null ? baseDtype(student.config()) : dtype;
        Files.createDirectories(dir);
        writeWeights(student, dir.resolve("model.safetensors"), merged, out);
        for (String f : TOKENIZER_FILES) {
            Path src = baseDir.resolve(f);
            if (Files.isRegularFile(src)) {
                AtomicFiles.writeBytes(dir.resolve(f), Files.readAllBytes(src));
            }
        }
        completesTokenizerConfig(dir, student.config().raw());
        ObjectNode cfg = exportConfig(student, merged, out);
        if (extra != null) {
            cfg.set("molt", extra);
        }
        AtomicFiles.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(cfg));
    }

    /**
     * An export's tokenizer must load with transformers' AutoTokenizer on its own, the way lm-evaluation-harness's
     * {@code local-completions} loads it: the export's config.json names a model type transformers does not know
     * ({@code molt_student}), so tokenizer_config.json must name the class, and lm-eval needs the tokenizer's EOS
     * (and BOS, for loglikelihood_rolling's prefix), which transformers' {@code PreTrainedTokenizerFast} reads only
     * from tokenizer_config.json. When the export has tokenizer.json: a missing {@code tokenizer_class} becomes
     * {@code PreTrainedTokenizerFast} (the class that reads tokenizer.json), and a missing {@code bos_token} or
     * {@code eos_token} becomes the content of the base config's {@code bos_token_id} / {@code eos_token_id} (the
     * first, where it is a list) in tokenizer.json. What the base names is kept.
     */
    static void completesTokenizerConfig(Path dir, JsonNode baseConfig) throws IOException {
        Path tokenizerJson = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizerJson)) {
            return;
        }
        Path f = dir.resolve("tokenizer_config.json");
        ObjectNode c = Files.isRegularFile(f) ? (ObjectNode) JSON.readTree(f.toFile()) : JSON.createObjectNode();
        boolean changed = false;
        if (!c.hasNonNull("tokenizer_class")) {
            c.put("tokenizer_class", "PreTrainedTokenizerFast");
            changed = true;
        }
        JsonNode tokenizer = null;
        for (String role : List.of("bos", "eos")) {
            JsonNode id = baseConfig == null ? null : baseConfig.get(role + "_token_id");
            if (id != null && id.isArray()) {
                id = id.size() == 0 ? null : id.get(0);
            }
            if (c.hasNonNull(role + "_token") || id == null || !id.canConvertToInt()) {
                continue;
            }
            if (tokenizer == null) {
                tokenizer = JSON.readTree(tokenizerJson.toFile());
            }
            String content = tokenContent(tokenizer, id.asInt());
            if (content != null) {
                c.put(role + "_token", content);
                changed = true;
            }
        }
        if (changed) {
            AtomicFiles.writeString(f, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(c));
        }
    }

    /** The text of token {@code id} in a Hugging Face tokenizer.json: an added token, else the model's vocab; null. */
    static String tokenContent(JsonNode tokenizer, int id) {
        for (JsonNode t : tokenizer.path("added_tokens")) {
            if (t.path("id").asInt(-1) == id && t.hasNonNull("content")) {
                return t.get("content").asText();
            }
        }
        var vocab = tokenizer.path("model").path("vocab").fields();
        while (vocab.hasNext()) {
            var e = vocab.next();
            if (e.getValue().canConvertToInt() && e.getValue().asInt() == id) {
                return e.getKey();
            }
        }
        return null;
    }

    /** model.safetensors: every base weight with LoRA folded in ({@code merged}) or the adapters, then the mixers. */
    private static void writeWeights(StudentModel student, Path file, boolean merged, DType out) throws IOException {
        List<SafetensorsWriter.Tensor> tensors = new ArrayList<>();
        try (WeightSource base = Checkpoints.open(student.baseDir())) {
            if (merged) {
                for (Map.Entry<String, long[]> e : LlamaWeights.expected(student.config()).entrySet()) {
                    String name = e.getKey();
                    LoraAdapter a = adapterFor(student, name);
                    tensors.add(SafetensorsWriter.Tensor.ofFloats(name, out, e.getValue(),
                            () -> a == null ? base.readFloats(name) : a.mergeInto(base.readFloats(name))));
                }
            } else {
                for (Map.Entry<String, NDArray> e : student.loraParameters().entrySet()) {
                    tensors.add(tensor(e.getKey(), out, e.getValue()));
                }
            }
            for (Map.Entry<String, NDArray> e : student.mixerParameters().entrySet()) {
                tensors.add(tensor(e.getKey(), out, e.getValue()));
            }
            SafetensorsWriter.write(file, tensors, Map.of("format", "pt", "producer", "molt"));
        }
    }

    /** The export's config.json: base model identity and config, plan, mixer and LoRA settings. */
    private static ObjectNode exportConfig(StudentModel student, boolean merged, DType out) throws IOException {
        Path baseDir = student.baseDir();
        ObjectNode cfg = JSON.createObjectNode();
        cfg.put("model_type", MODEL_TYPE);
        cfg.put("weights", merged ? "merged" : "adapters");
        cfg.put("dtype", out.name());
        ObjectNode baseNode = cfg.putObject("base_model");
        baseNode.put("path", baseDir.toAbsolutePath().normalize().toString());
        baseNode.put("sha256", Checkpoints.weightsSha256(baseDir));
        cfg.set("base_config", student.config().raw());
        ArrayNode plan = cfg.putArray("plan");
        student.plan().layers().forEach(plan::add);
        MixerSettings s = student.settings();
        cfg.putObject("mixer").put("feature_dim", s.featureDim()).put("window", s.window())
                .put("chunk_size", s.chunkSize()).put("window_factor_init", s.windowFactorInit());
        LoraConfig l = student.loraConfig();
        if (l == null || merged) {
            cfg.putNull("lora");
        } else {
            ObjectNode ln = cfg.putObject("lora").put("rank", l.rank()).put("alpha", l.alpha()).put("dropout", l.dropout());
            ArrayNode t = ln.putArray("targets");
            l.targets().forEach(t::add);
        }
        return cfg;
    }

    private static SafetensorsWriter.Tensor tensor(String name, DType dtype, NDArray a) {
        return SafetensorsWriter.Tensor.ofFloats(name, dtype, a.getShape().getShape(),
                molt.teacher.nd.NativeArrays.values(a));
    }

    /** The adapter whose projection weight is {@code name}, or null. */
    private static LoraAdapter adapterFor(StudentModel s, String name) {
        for (int i = 0; i < s.config().numLayers(); i++) {
            for (Projection t : Projection.values()) {
                if (name.equals(t.prefix(i) + "weight")) {
                    return s.adapter(i, t.shortName());
                }
            }
        }
        return null;
    }

    /** True when {@code DIR/config.json} declares a molt student. */
    public static boolean isStudent(Path dir) {
        Path f = dir.resolve("config.json");
        if (!Files.isRegularFile(f)) {
            return false;
        }
        try {
            return MODEL_TYPE.equals(JSON.readTree(f.toFile()).path("model_type").asText());
        } catch (IOException e) {
            return false;
        }
    }

    private static ObjectNode readConfig(Path dir) {
        Path f = dir.resolve("config.json");
        try {
            JsonNode n = JSON.readTree(Files.readString(f));
            if (n == null || !n.isObject()) {
                throw new InputException(f, "expected a JSON object");
            }
            return (ObjectNode) n;
        } catch (NoSuchFileException e) {
            throw new InputException(f, "missing");
        } catch (IOException e) {
            throw new InputException(f, "not valid JSON: " + JsonErrors.describe(e));
        }
    }

    /** The base model's directory recorded in a student's config.json (it may have moved since). */
    public static Path basePath(Path dir) {
        String p = readConfig(dir).path("base_model").path("path").asText("");
        if (p.isEmpty()) {
            throw new InputException(dir.resolve("config.json"), "missing base_model.path");
        }
        return Path.of(p);
    }

    /** The base architecture recorded in a student's config.json. */
    public static LlamaConfig baseConfig(Path dir) {
        Path f = dir.resolve("config.json");
        JsonNode base = readConfig(dir).get("base_config");
        if (base == null || !base.isObject()) {
            throw new InputException(f, "missing base_config");
        }
        return LlamaConfig.fromJson((ObjectNode) base, f);
    }

    /** Loads a student checkpoint directory onto {@code device}, its base weights as F32. */
    public static StudentModel load(Path dir, Device device) {
        return load(dir, device, molt.teacher.Precision.F32);
    }

    /** Loads a student checkpoint directory onto {@code device}, its frozen base weights held at {@code precision}. */
    public static StudentModel load(Path dir, Device device, molt.teacher.Precision precision) {
        Path f = dir.resolve("config.json");
        ObjectNode cfg = readConfig(dir);
        LlamaConfig c = baseConfig(dir);
        String weights = cfg.path("weights").asText("");
        if (!weights.equals("merged") && !weights.equals("adapters")) {
            throw new InputException(f, "weights: expected merged or adapters, found '" + weights + "'");
        }
        StudentPlan plan = plan(cfg, f, c);
        MixerSettings settings = settings(cfg, f);
        JsonNode baseNode = cfg.path("base_model");
        Path basePath = Path.of(baseNode.path("path").asText(""));
        try (WeightSource own = Checkpoints.open(dir)) {
            Map<String, float[]> extra = new HashMap<>();
            LlamaModel base;
            if (weights.equals("merged")) {
                WeightSource teacherPart = new Filtered(own, LlamaWeights.expected(c).keySet());
                base = LlamaModel.fromWeights(c, teacherPart, device, precision);
            } else {
                if (!Files.isDirectory(basePath)) {
                    throw new InputException(f, "base model " + basePath + " is missing (adapters-only checkpoints"
                            + " need the base model they were trained on)");
                }
                String want = baseNode.path("sha256").asText("");
                String found = Checkpoints.weightsSha256(basePath);
                if (!want.equals(found)) {
                    throw new InputException(f, "base model " + basePath + " has SHA-256 " + found + ", expected "
                            + want + " (not the model this student was trained on)");
                }
                base = LlamaModel.load(basePath, device, precision);
            }
            for (String n : own.names()) {
                if (n.contains(".self_attn.mixer.") || n.contains(".lora_")) {
                    extra.put(n, molt.teacher.io.Floats.requireFinite(own.origin(), n, own.readFloats(n)));
                }
            }
            StudentModel s = StudentModel.create(base, weights.equals("merged") ? dir : basePath, plan, settings);
            s.loadMixerParameters(extra);
            JsonNode lora = cfg.get("lora");
            if (lora != null && !lora.isNull()) {
                List<String> targets = new ArrayList<>();
                lora.path("targets").forEach(t -> targets.add(t.asText()));
                LoraConfig lc;
                try {
                    lc = new LoraConfig(lora.path("rank").asInt(), lora.path("alpha").asDouble(),
                            lora.path("dropout").asDouble(), targets);
                } catch (IllegalArgumentException e) {
                    throw new InputException(f, "lora: " + e.getMessage());
                }
                s.loadLora(lc, extra);
            }
            s.setMixersTrainable(false);
            s.setLoraTrainable(false);
            return s;
        }
    }

    private static StudentPlan plan(ObjectNode cfg, Path f, LlamaConfig c) {
        JsonNode p = cfg.get("plan");
        if (p == null || !p.isArray()) {
            throw new InputException(f, "missing plan (a list of mixer names, one per layer)");
        }
        if (p.size() != c.numLayers()) {
            throw new InputException(f, "plan lists " + p.size() + " layers, base_config has " + c.numLayers());
        }
        List<String> layers = new ArrayList<>();
        p.forEach(n -> layers.add(n.asText()));
        try {
            return new StudentPlan(layers);
        } catch (InputException e) {
            throw new InputException(f, e.getMessage());
        }
    }

    private static MixerSettings settings(ObjectNode cfg, Path f) {
        JsonNode m = cfg.path("mixer");
        try {
            return new MixerSettings(m.path("feature_dim").asInt(64), m.path("window").asInt(64),
                    m.path("chunk_size").asInt(64), m.path("window_factor_init").asDouble(-2.197));
        } catch (IllegalArgumentException e) {
            throw new InputException(f, "mixer: " + e.getMessage());
        }
    }

    /** A view of a weight source restricted to some names. */
    private record Filtered(WeightSource inner, Set<String> keep) implements WeightSource {
        @Override
        public Path origin() {
            return inner.origin();
        }

        @Override
        public Set<String> names() {
            Set<String> n = new TreeSet<>(inner.names());
            n.retainAll(keep);
            return n;
        }

        @Override
        public TensorInfo info(String name) {
            return inner.info(name);
        }

        @Override
        public float[] readFloats(String name) {
            return inner.readFloats(name);
        }

        @Override
        public void readHalf(String name, long offset, short[] into, molt.teacher.io.HalfConversion conversion) {
            inner.readHalf(name, offset, into, conversion);
        }
    }
}
