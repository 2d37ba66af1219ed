package molt.pipeline.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import molt.student.StudentCheckpoint;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.io.Checkpoints;
import molt.teacher.io.DType;
import molt.teacher.io.JsonFiles;
import molt.teacher.io.TensorInfo;
import molt.teacher.io.WeightSource;
import molt.teacher.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code molt inspect}: what a model directory holds. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Print a model directory's architecture, parameter count, dtypes and files.")
public final class InspectCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "Model directory.")
    Path model;

    @Override
    public Integer call() throws Exception {
        if (StudentCheckpoint.isStudent(model)) {
            return inspectStudent();
        }
        LlamaConfig c = LlamaConfig.read(model);
        StringBuilder sb = new StringBuilder();
        try (WeightSource w = Checkpoints.open(model)) {
            LlamaWeights.validate(c, w);
            Map<DType, long[]> byType = new TreeMap<>();
            long params = 0;
            for (String n : w.names()) {
                TensorInfo t = w.info(n);
                long[] agg = byType.computeIfAbsent(t.dtype(), k -> new long[3]);
                agg[0]++;
                agg[1] += t.numel();
                agg[2] += t.byteSize();
                params += t.numel();
            }
            line(sb, "model", model.toAbsolutePath().normalize().toString());
            line(sb, "model_type", c.modelType());
            line(sb, "layers", c.numLayers());
            line(sb, "hidden_size", c.hiddenSize());
            line(sb, "heads", c.numHeads() + " query, " + c.numKvHeads() + " key/value (GQA groups of " + c.kvGroups()
                    + "), head_dim " + c.headDim());
            line(sb, "intermediate_size", c.intermediateSize());
            line(sb, "vocab_size", c.vocabSize());
            line(sb, "rope", "theta " + c.ropeTheta() + (c.ropeScaling() == null ? ", no scaling"
                    : ", " + c.ropeScaling().type() + " scaling x" + c.ropeScaling().factor()));
            line(sb, "rms_norm_eps", c.rmsNormEps());
            line(sb, "tied embeddings", c.tieWordEmbeddings());
            line(sb, "biases", "q/k/v " + c.qkvBias() + ", o " + c.oBias() + ", mlp " + c.mlpBias());
            line(sb, "parameters", String.format("%,d (architecture: %,d)", params, LlamaWeights.parameterCount(c)));
            for (Map.Entry<DType, long[]> e : byType.entrySet()) {
                line(sb, "dtype " + e.getKey(), String.format("%d tensors, %,d values, %,d bytes", e.getValue()[0],
                        e.getValue()[1], e.getValue()[2]));
            }
        }
        long total = 0;
        for (Path f : Checkpoints.weightFiles(model)) {
            long size = Files.size(f);
            total += size;
            line(sb, "file", f.getFileName() + " (" + String.format("%,d", size) + " bytes)");
        }
        line(sb, "weights on disk", String.format("%,d bytes", total));
        line(sb, "tokenizer", Tokenizers.present(model) ? "tokenizer.json" : "none (use --tokens)");
        System.out.print(sb);
        return 0;
    }

    private int inspectStudent() throws Exception {
        com.fasterxml.jackson.databind.JsonNode cfg = JsonFiles.readObject(model.resolve("config.json"));
        LlamaConfig c = StudentCheckpoint.baseConfig(model);
        StringBuilder sb = new StringBuilder();
        line(sb, "model", model.toAbsolutePath().normalize().toString());
        line(sb, "model_type", StudentCheckpoint.MODEL_TYPE + " (base " + c.modelType() + ", " + c.numLayers()
                + " layers, hidden " + c.hiddenSize() + ")");
        line(sb, "weights", cfg.path("weights").asText() + " (" + cfg.path("dtype").asText() + ")");
        line(sb, "base model", cfg.path("base_model").path("path").asText() + " sha256 "
                + cfg.path("base_model").path("sha256").asText());
        java.util.List<String> plan = new java.util.ArrayList<>();
        cfg.path("plan").forEach(n -> plan.add(n.asText()));
        for (int i = 0; i < plan.size(); i++) {
            line(sb, "layer " + i, plan.get(i));
        }
        line(sb, "mixer settings", cfg.path("mixer").toString());
        line(sb, "lora", cfg.path("lora").isNull() ? "none (merged or not used)" : cfg.path("lora").toString());
        long own = 0;
        long mixer = 0;
        long lora = 0;
        try (WeightSource w = Checkpoints.open(model)) {
            for (String n : w.names()) {
                long k = w.info(n).numel();
                own += k;
                mixer += n.contains(".self_attn.mixer.") ? k : 0;
                lora += n.contains(".lora_") ? k : 0;
            }
        }
        line(sb, "parameters", String.format("%,d stored (mixers %,d, LoRA %,d; base architecture %,d)", own, mixer,
                lora, LlamaWeights.parameterCount(c)));
        line(sb, "tokenizer", Tokenizers.present(model) ? "tokenizer.json" : "none (use --tokens)");
        System.out.print(sb);
        return 0;
    }

    private static void line(StringBuilder sb, String key, Object value) {
        sb.append(String.format("%-18s %s%n", key + ":", value));
    }
}
