package molt.pipeline.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.student.StudentPlan;
import molt.student.lora.LoraConfig;
import molt.student.mixer.MixerRegistry;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code molt validate CONFIG}: checks a config without running it. */
@Command(name = "validate", mixinStandardHelpOptions = true,
        description = "Check a config without running it; print the resolved config, parameter counts and a memory estimate.")
public final class ValidateCommand implements Callable<Integer> {
    private static final double GIB = 1L << 30;
    @Parameters(index = "0", description = "The run config (YAML).")
    Path config;

    @picocli.CommandLine.Mixin
    ConfigOverrides overrides = new ConfigOverrides();

    @Override
    public Integer call() throws Exception {
        RunConfig loaded = ConfigLoader.load(config, overrides.list());
        RunConfig cfg = loaded.resolveAuto(molt.pipeline.run.Preflight.teacher(loaded)); // what run would choose
        LlamaConfig c = molt.pipeline.run.Preflight.check(cfg);
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        System.out.print(yaml.writeValueAsString(cfg.toJson()));
        StudentPlan plan = cfg.student().plan(c.numLayers());
        long teacher = LlamaWeights.parameterCount(c);
        long mixers = 0;
        for (String m : plan.layers()) {
            mixers += MixerRegistry.parameterCount(m, c.numHeads(), c.headDim(), c.hiddenSize(),
                    cfg.student().settings());
        }
        LoraConfig l = cfg.lora().toConfig();
        long lora = 0;
        for (molt.teacher.Projection p : l.projections()) {
            lora += (long) l.rank() * (p.in(c) + p.out(c)) * c.numLayers();
        }
        long t = (long) cfg.data().batchSize() * cfg.data().seqLen();
        molt.pipeline.run.MemoryEstimate est = molt.pipeline.run.MemoryEstimate.of(cfg, c);
        System.out.printf("# plan: %s%s%n", String.join(", ", plan.layers()), cfg.student().autoSoftmax()
                ? String.format(" (softmax_layers auto: after attention transfer, the %d layer(s) with the largest "
                + "relative error keep softmax)", cfg.student().softmaxCount(plan.mixerLayers().length)) : "");
        boolean trainMixers = cfg.stages().stream().anyMatch(st -> st instanceof molt.pipeline.config.LoraFinetuneSpec f
                && f.trainMixers());
        long second = lora + (trainMixers ? mixers : 0);
        System.out.printf("# parameters: teacher %,d; attention transfer trains %,d (%.4f%%); LoRA trains %,d (%.4f%%)%s%n",
                teacher, mixers, 100.0 * mixers / teacher, second, 100.0 * second / teacher,
                trainMixers ? " (adapters and mixers: train_mixers)" : "");
        for (var v : cfg.variants()) {
            List<String> own = v.overrides(cfg).stream().map(molt.pipeline.config.StageSpec::name).toList();
            System.out.printf("# variant %s: plan %s; LoRA rank %d%s%s%n", v.name(),
                    String.join(", ", v.student().plan(c.numLayers()).layers()), v.lora().rank(),
                    v.skip().isEmpty() ? "" : "; skips " + String.join(", ", v.skip()),
                    own.isEmpty() ? "" : "; its own settings for " + String.join(", ", own));
        }
        System.out.printf("# memory estimate: %.2f GiB peak (%s frozen weights %.2f GiB; attention transfer step %.2f GiB, "
                + "LoRA step %.2f GiB, each with the trained parameters' AdamW state and the arrays of one %d-token "
                + "micro-batch)%n", est.peakBytes() / GIB, cfg.precision(), est.frozenBytes() / GIB,
                est.transferBytes() / GIB, est.loraBytes() / GIB, t);
        return 0;
    }
}
