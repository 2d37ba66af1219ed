package molt.spark;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.run.MetricsLog;
import molt.pipeline.run.RunLog;
import molt.pipeline.run.Runner;
import molt.pipeline.run.StopSignal;
import molt.pipeline.run.Unit;
import molt.pipeline.train.TrainingLoop;
import molt.teacher.Devices;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.ThreadContext;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;

/**
 * One unit of a run, executed in a Spark task: the executor loads the run's config (from the shared filesystem),
 * opens the run directory the driver set up, and executes the unit with its metrics and log lines going to part files
 * under {@code RUN_DIR/parts/}, which the driver merges into metrics.jsonl and molt.log once the unit succeeds.
 *
 * <p>DJL allows one GradientCollector per JVM, and a local Spark master runs tasks as threads of one JVM: units take
 * turns on a JVM-wide lock (on a cluster, give each executor one task slot per device, so the lock is never
 * contended). A unit fails by throwing, and Spark retries it; the retry resumes from the unit's checkpoints and keeps
 * whatever the failed attempt completed, so it writes the same bytes.
 */
public final class UnitTask implements Serializable {
    private static final Logger LOG = LogManager.getLogger(UnitTask.class);
    /** Units of one JVM run one at a time. */
    static final ReentrantLock JVM_LOCK = new ReentrantLock(true);

    /**
     * What a task needs: the config file and its {@code --set} overrides, the unit, and an injected fault (the name
     * of a unit whose first attempt stops after {@code stopAfterPolls} polls of its stop signal, or null).
     */
    public record Spec(String configFile, ArrayList<String> sets, Unit unit, String stopOnce, long stopAfterPolls)
            implements Serializable {
    }

    /** What a task reports: the unit's seconds and the attempt that succeeded. */
    public record Result(String unit, double seconds, int attempt) implements Serializable {
    }

    private UnitTask() {
    }

    /** Runs {@code spec}'s unit in this JVM (called by Spark on an executor). */
    public static Result call(Spec spec, int attempt) throws IOException {
        JVM_LOCK.lock();
        String part = spec.unit().name();
        try {
            Configurator.setLevel("molt", Level.INFO);
            Path configFile = Path.of(spec.configFile());
            SparkConf conf = SparkEnv.get().conf();
            List<String> sets = InputStaging.stagedSets(configFile, spec.sets(), conf, false);
            RunConfig cfg = Runner.resolve(ConfigLoader.load(configFile, sets), taskCpus(conf));
            boolean fault = part.equals(spec.stopOnce()) && attempt == 0;
            StopSignal stop = fault ? StopSignal.afterPolls(spec.stopAfterPolls()) : StopSignal.manual();
            Runner.Session session = Runner.Session.open(cfg, stop, Devices.resolve(deviceFor(cfg.device(),
                    taskGpus())));
            Path metricsPart = partFile(session.dir(), spec.unit(), ".metrics.jsonl");
            Path logPart = partFile(session.dir(), spec.unit(), ".log");
            Files.createDirectories(metricsPart.getParent());
            truncateReplayedMetrics(cfg, spec.unit(), metricsPart);
            ThreadContext.put(RunLog.PART, part);
            long t0 = System.nanoTime();
            try (RunLog log = RunLog.attachPart(logPart, part); MetricsLog metrics = new MetricsLog(metricsPart)) {
                LOG.info("{}: attempt {}{}", part, attempt, fault ? " (a stop is injected)" : "");
                session.execute(spec.unit(), metrics, List.of());
            } finally {
                ThreadContext.remove(RunLog.PART);
            }
            return new Result(part, (System.nanoTime() - t0) / 1e9, attempt);
        } finally {
            JVM_LOCK.unlock();
        }
    }

    /**
     * The device a task computes on: the first GPU Spark assigned to it ({@code spark.task.resource.gpu.amount}),
     * given as {@code gpus}, when the config asks for {@code gpu} or {@code auto}, since an executor may see more GPUs
     * than it was given; else the config's setting.
     */
    static String deviceFor(String setting, String[] gpus) {
        String s = setting == null ? "cpu" : setting.trim().toLowerCase(java.util.Locale.ROOT);
        if (gpus.length == 0 || !(s.equals("gpu") || s.equals("auto"))) {
            return setting;
        }
        return "gpu:" + gpus[0];
    }

    /**
     * The cores a task may use, {@code spark.task.cpus} (default 1): what {@code threads: auto} gives a large model's
     * tasks, on the driver and every executor alike.
     */
    static int taskCpus(SparkConf conf) {
        return conf.getInt("spark.task.cpus", 1);
    }

    /** The addresses of the GPUs Spark assigned to this task (none outside a task or without GPU scheduling). */
    private static String[] taskGpus() {
        TaskContext task = TaskContext.get();
        if (task == null || task.resources().get("gpu").isEmpty()) {
            return new String[0];
        }
        return task.resources().get("gpu").get().addresses();
    }

    /** A unit's part file in {@code RUN_DIR/parts/}: its name with slashes as '~', and {@code suffix}. */
    static Path partFile(Path runDir, Unit unit, String suffix) {
        return runDir.resolve("parts").resolve(unit.name().replace('/', '~') + suffix);
    }

    /**
     * A retried unit resumes from its latest checkpoint and logs the steps after it again: drops those lines of its
     * part file first (as the runner does for metrics.jsonl on resume).
     */
    private static void truncateReplayedMetrics(RunConfig cfg, Unit unit, Path metricsPart) throws IOException {
        if (unit.kind() == Unit.Kind.TOPK_SHARD || !Files.exists(metricsPart)) {
            return;
        }
        Path stageDir = cfg.outputDir().resolve("stages").resolve(unit.jobId());
        for (var e : TrainingLoop.resumeSteps(stageDir, unit.jobId(), cfg.checkpoint().keepLast()).entrySet()) {
            MetricsLog.truncateAfter(metricsPart, e.getKey(), e.getValue());
        }
    }
}
