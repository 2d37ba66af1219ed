package molt.pipeline.cli;

import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/** The options that change a run config from the command line, shared by {@code run} and {@code validate}. */
final class ConfigOverrides {
    @Option(names = "--set", description = "Override a config value: key.path=value (lists: stages[1].lr).")
    List<String> sets = new ArrayList<>();

    @Option(names = "--precision", description = "Frozen weights: f32, f16 or auto (the config's precision key).")
    String precision;

    @Option(names = "--threads", description = "PyTorch CPU threads: a number or auto (the config's threads key).")
    String threads;

    /** The --set overrides with --precision and --threads added. */
    List<String> list() {
        List<String> all = new ArrayList<>(sets);
        if (precision != null) {
            all.add("precision=" + precision);
        }
        if (threads != null) {
            all.add("threads=" + threads);
        }
        return all;
    }
}
