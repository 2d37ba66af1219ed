package molt.pipeline.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.run.Runner;
import molt.pipeline.run.StopSignal;
import molt.pipeline.train.StageStopped;
import molt.pipeline.train.TrainingDiverged;
import molt.teacher.io.JsonFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code molt run CONFIG}: runs (or resumes) a staged distillation. */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run the stages of a config in its output_dir; an existing run directory with the same resolved "
                + "config resumes. Exit: 0 done, 2 bad input or config, 143 stopped by SIGTERM after writing a "
                + "checkpoint (run again to resume), 1 failure.")
public final class RunCommand implements Callable<Integer> {
    @Parameters(index = "0", description = "The run config (YAML).")
    Path config;

    @picocli.CommandLine.Mixin
    ConfigOverrides overrides = new ConfigOverrides();

    @picocli.CommandLine.Option(names = "--no-progress",
            description = "Plain log lines only, even on a terminal (a live progress line is drawn otherwise).")
    boolean noProgress;

    /** Stage times, final losses and attention transfer's per-layer MSE, then where the report and student are. */
    static void printSummary(Path report) throws java.io.IOException {
        var json = JsonFiles.readObject(report);
        System.out.printf("%-30s %-20s %10s %14s%n", "stage", "type", "seconds", "best val loss");
        json.path("stages").fields().forEachRemaining(e -> {
            var r = e.getValue().path("result");
            System.out.printf("%-30s %-20s %10.1f %14s%n", e.getKey(), e.getValue().path("type").asText(),
                    e.getValue().path("seconds").asDouble(), r.path("best_val_loss").isNumber()
                            ? String.format("%.5f", r.path("best_val_loss").asDouble()) : "-");
            for (var l : r.path("per_layer_mse")) {
                System.out.printf("  layer %-3d %-16s MSE %.6f%s%n", l.path("layer").asInt(), l.path("mixer").asText(),
                        l.path("mse").asDouble(), l.path("relative_mse").isNumber()
                                ? String.format("  relative %.4f", l.path("relative_mse").asDouble()) : "");
            }
        });
        json.path("plans").fields().forEachRemaining(p -> System.out.println("softmax_layers auto (" + p.getKey()
                + "): softmax kept in layers " + p.getValue().path("softmax_layers") + ", the largest relative errors of "
                + p.getValue().path("measured_by").asText()));
        System.out.println("teacher: " + json.path("teacher").asText());
        System.out.println("student: " + json.path("student").asText());
        json.path("variants").fields().forEachRemaining(v ->
                System.out.println("  " + v.getKey() + ": " + v.getValue().path("student").asText()));
        System.out.println("report:  " + report);
    }

    @Override
    public Integer call() throws Exception {
        // Read by DJL when the engine starts (Runner.resolve starts it to set the intra-op thread count).
        System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
        RunConfig cfg = molt.pipeline.run.Runner.resolve(ConfigLoader.load(config, overrides.list()));
        if (!noProgress && molt.pipeline.run.Progress.stderrIsTerminal()) {
            molt.pipeline.run.Progress.start();
        }
        try (StopSignal stop = StopSignal.install()) {
            // Caught inside the try: closing the signal lets a waiting SIGTERM hook end the JVM, so everything to
            // say must be said first.
            try {
                Path dir;
                try {
                    dir = Runner.run(cfg, stop);
                } finally {
                    molt.pipeline.run.Progress.stop();
                }
                printSummary(dir.resolve("report.json"));
                return 0;
            } catch (StageStopped e) {
                System.err.println("molt: " + e.getMessage());
                System.err.flush();
                return 3;
            } catch (TrainingDiverged e) {
                System.err.println("molt: " + e.getMessage());
                return 1;
            }
        }
    }
}
