package molt.spark;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import molt.pipeline.run.Dispatcher;
import molt.pipeline.run.MetricsLog;
import molt.pipeline.run.Runner;
import molt.pipeline.run.Unit;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * Runs a run's units as Spark tasks, one partition per unit, and waits for all of them; Spark retries a failed task
 * up to {@code spark.task.maxFailures} times. Then, in unit order, each unit's part files are appended to the run's
 * metrics.jsonl and molt.log and removed.
 */
public final class SparkDispatcher implements Dispatcher {
    /** Spark setting: the name of a unit whose first attempt stops (fault injection, for tests of retries). */
    public static final String STOP_ONCE = "spark.molt.faults.stopOnce";
    /** Spark setting: after how many polls of the stop signal the injected stop happens (default 3). */
    public static final String STOP_AFTER = "spark.molt.faults.stopAfterPolls";

    private final JavaSparkContext sc;
    private final Path configFile;
    private final List<String> sets;

    public SparkDispatcher(JavaSparkContext sc, Path configFile, List<String> sets) {
        this.sc = sc;
        this.configFile = configFile.toAbsolutePath().normalize();
        this.sets = List.copyOf(sets);
    }

    @Override
    public boolean distributed() {
        return true;
    }

    @Override
    public double[] run(Runner.Session session, List<Unit> units) throws IOException {
        String stopOnce = sc.getConf().get(STOP_ONCE, null);
        long stopAfter = sc.getConf().getLong(STOP_AFTER, 3);
        List<UnitTask.Spec> specs = new ArrayList<>();
        for (Unit u : units) {
            specs.add(new UnitTask.Spec(configFile.toString(), new ArrayList<>(sets), u, stopOnce, stopAfter));
        }
        sc.setJobDescription("molt " + session.config().name() + ": " + units.size() + " units");
        List<UnitTask.Result> results = sc.parallelize(specs, specs.size())
                .map(s -> UnitTask.call(s, TaskContext.get().attemptNumber())).collect();
        double[] seconds = new double[units.size()];
        for (int i = 0; i < units.size(); i++) {
            seconds[i] = results.get(i).seconds();
            mergeParts(session, units.get(i));
        }
        return seconds;
    }

    /** Appends a unit's metrics records and log lines to the run's, then removes its part files. */
    private static void mergeParts(Runner.Session session, Unit unit) throws IOException {
        Path metrics = UnitTask.partFile(session.dir(), unit, ".metrics.jsonl");
        for (ObjectNode record : MetricsLog.records(metrics)) {
            session.metrics().write(record);
        }
        Path log = UnitTask.partFile(session.dir(), unit, ".log");
        if (Files.isRegularFile(log)) {
            Files.write(session.dir().resolve("molt.log"), Files.readAllBytes(log), StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        }
        Files.deleteIfExists(metrics);
        Files.deleteIfExists(log);
    }
}
