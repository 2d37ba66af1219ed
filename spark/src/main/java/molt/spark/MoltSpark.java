package molt.spark;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.run.Runner;
import molt.pipeline.run.StopSignal;
import molt.teacher.InputException;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code spark-submit --class molt.spark.MoltSpark molt-spark.jar run CONFIG [--set key=value ...]}: runs (or
 * resumes) a run with its units as Spark tasks ({@link SparkDispatcher}). The driver holds the run directory's lock,
 * prepares the data, runs the shared stages and the merges, and writes run.json and the report; the teacher's top-k
 * targets (one task per shard), attention transfer in layer groups (one task per group) and the stages of the
 * run's student chains (the run's own and each variant's, side by side) run on the executors.
 */
@Command(name = "molt-spark", mixinStandardHelpOptions = true, subcommands = {MoltSpark.Run.class},
        description = "molt's distillation runs on Apache Spark.")
public final class MoltSpark {
    private MoltSpark() {
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the command line; returns its exit code (2 for bad input, with a one-line message). */
    public static int execute(String... args) {
        CommandLine cli = new CommandLine(MoltSpark.class);
        boolean debug = List.of(args).contains("--debug");
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof InputException && !debug) {
                System.err.println("error: " + e.getMessage());
                return 2;
            }
            throw e;
        });
        return cli.execute(args);
    }

    @Command(name = "run", mixinStandardHelpOptions = true,
            description = "Runs or resumes CONFIG's run with its units as Spark tasks.")
    static final class Run implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "CONFIG", description = "the run's YAML config (on a filesystem every executor reads)")
        Path config;

        @Option(names = "--set", paramLabel = "KEY=VALUE", description = "overrides a config key (repeatable)")
        List<String> sets = new ArrayList<>();

        @Option(names = "--debug", description = "stack traces for bad input too")
        boolean debug;

        @Override
        public Integer call() throws Exception {
            SparkConf conf = new SparkConf();
            if (!conf.contains("spark.master")) {
                conf.setMaster("local[1]");
            }
            RunConfig cfg = Runner.resolve(ConfigLoader.load(config, InputStaging.stagedSets(config, sets, conf, true)),
                    UnitTask.taskCpus(conf));
            conf.setAppName("molt " + cfg.name());
            checkPathsFor(conf.get("spark.master"), cfg);
            try (JavaSparkContext sc = new JavaSparkContext(conf); StopSignal stop = StopSignal.install()) {
                Path dir = Runner.run(cfg, stop, new SparkDispatcher(sc, config, sets));
                System.out.println("run done: " + dir.resolve("report.json"));
            }
            return 0;
        }
    }

    /**
     * On a cluster, executors resolve the config's paths on their own machines, in their own working directories:
     * the run directory, teacher and data must be absolute paths on a filesystem they share.
     */
    static void checkPathsFor(String master, RunConfig cfg) {
        if (master.startsWith("local")) {
            return;
        }
        check("output_dir", cfg.outputDir());
        check("teacher.path", cfg.teacher());
        check("teacher.cache_dir", cfg.teacherCache());
    }

    private static void check(String key, Path p) {
        if (p != null && !p.isAbsolute()) {
            throw new InputException("config: " + key + " '" + p + "' is relative; executors resolve it in their own "
                    + "working directories: give an absolute path on the filesystem they share");
        }
    }
}
