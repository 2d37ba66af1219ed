package molt.pipeline.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.student.StudentPlan;
import molt.student.lora.LoraConfig;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code molt validate CONFIG}: checks a config without running it. */
@Command(name = "validate", mixinStandardHelpOptions = true,
        description = "Check a config without running it; print the resolved config, parameter counts and a memory estimate.")
public final class ValidateCommand implements Callable<Integer> {
    @Parameters(index = "0", description = "The run config (YAML).")
    Path config;

    @Option(names = "--set", description = "Override a config value: key.path=value.")
    List<String> sets = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        RunConfig cfg = ConfigLoader.load(config, sets);
        LlamaConfig c = molt.pipeline.run.Preflight.check(cfg);
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        System.out.print(yaml.writeValueAsString(cfg.toJson()));
        StudentPlan plan = cfg.student().plan(c.numLayers());
        long teacher = LlamaWeights.parameterCount(c);
        long mixers = 0;
        int f = cfg.student().settings().featureDim();
        for (String m : plan.layers()) {
            if (m.equals("hedgehog") || m.equals("hedgehog_window")) {
                mixers += 2L * c.numHeads() * c.headDim() * f + (m.equals("hedgehog_window") ? c.numHeads() : 0);
            } else if (m.equals("retention")) {
                mixers += (long) c.numHeads() * c.headDim(); // the output norm's gain
            } else if (m.equals("mamba2")) {
                long hd = (long) c.numHeads() * c.headDim();
                // three convolutions (weights and biases), z and dt projections, dt_bias, A_log, D, norm
                mixers += 3 * (hd * 4 + hd) + (long) c.hiddenSize() * hd + (long) c.hiddenSize() * c.numHeads()
                        + 3L * c.numHeads() + hd;
            } else if (m.equals("gated_deltanet")) {
                long hd = (long) c.numHeads() * c.headDim();
                // three convolutions, beta and decay projections, dt_bias, A_log, output gate, norm
                mixers += 3 * (hd * 4 + hd) + 2L * c.hiddenSize() * c.numHeads() + 2L * c.numHeads()
                        + (long) c.hiddenSize() * hd + hd;
            } else if (m.equals("gla")) {
                // low-rank gate (rank 16, two matrices and a bias) and the output norm's gain, per head
                mixers += (long) c.numHeads() * (2L * c.headDim() * 16 + 2L * c.headDim());
            }
        }
        LoraConfig l = cfg.lora().toConfig();
        long lora = 0;
        for (String t : l.targets()) {
            int[] io = switch (t) {
                case "q" -> new int[] {c.hiddenSize(), c.qDim()};
                case "k", "v" -> new int[] {c.hiddenSize(), c.kvDim()};
                case "o" -> new int[] {c.qDim(), c.hiddenSize()};
                case "gate", "up" -> new int[] {c.hiddenSize(), c.intermediateSize()};
                default -> new int[] {c.intermediateSize(), c.hiddenSize()};
            };
            lora += (long) l.rank() * (io[0] + io[1]) * c.numLayers();
        }
        long t = (long) cfg.data().batchSize() * cfg.data().seqLen();
        long activations = 4L * t * (long) c.numLayers() * (12L * c.hiddenSize() + 2L * c.intermediateSize())
                + 4L * t * c.vocabSize() * 3;
        long memory = 4 * teacher + 16 * (mixers + lora) + activations;
        System.out.printf("# plan: %s%n", String.join(", ", plan.layers()));
        System.out.printf("# parameters: teacher %,d; attention transfer trains %,d (%.4f%%); LoRA trains %,d (%.4f%%)%n",
                teacher, mixers, 100.0 * mixers / teacher, lora, 100.0 * lora / teacher);
        for (var v : cfg.variants()) {
            System.out.printf("# variant %s: plan %s; LoRA rank %d%s%n", v.name(),
                    String.join(", ", v.student().plan(c.numLayers()).layers()), v.lora().rank(),
                    v.skip().isEmpty() ? "" : "; skips " + String.join(", ", v.skip()));
        }
        System.out.printf("# memory estimate: %.2f GiB (fp32 teacher weights, trained parameters with AdamW state and "
                + "gradients, activations of one %d-token micro-batch)%n", memory / (double) (1L << 30), t);
        return 0;
    }
}
