package molt.pipeline.run;

import java.nio.file.Path;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.Appender;
import org.apache.logging.log4j.core.Filter;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.FileAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.filter.AbstractFilter;
import org.apache.logging.log4j.core.layout.PatternLayout;

/**
 * Adds the run directory's log file ({@code molt.log}) to Log4j2 for the duration of a run. A unit of the run
 * executed as a distributed task logs to a part file of its own ({@link #attachPart}), merged into molt.log by the
 * process that runs the run: its thread carries {@link #PART} in Log4j's thread context, which the run's own file
 * leaves out (in a local cluster, tasks are threads of the run's process).
 */
public final class RunLog implements AutoCloseable {
    private final Appender appender;

    private RunLog(Appender appender) {
        this.appender = appender;
    }

    /** The thread-context key naming the unit a task thread executes. */
    public static final String PART = "molt.part";

    public static RunLog attach(Path file) {
        return attach(file, Filter.Result.DENY, Filter.Result.NEUTRAL, null);
    }

    /** A log file receiving only the events of threads whose {@link #PART} is {@code part}. */
    public static RunLog attachPart(Path file, String part) {
        return attach(file, Filter.Result.NEUTRAL, Filter.Result.DENY, part);
    }

    private static RunLog attach(Path file, Filter.Result inPart, Filter.Result outside, String part) {
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        Configuration cfg = ctx.getConfiguration();
        PatternLayout layout = PatternLayout.newBuilder().withConfiguration(cfg)
                .withPattern("%d{ISO8601} %-5level %c{1} - %msg%n").build();
        Filter filter = new AbstractFilter(inPart, outside) {
            @Override
            public Result filter(LogEvent event) {
                String p = event.getContextData().getValue(PART);
                return p != null && (part == null || part.equals(p)) ? onMatch : onMismatch;
            }
        };
        Appender a = FileAppender.newBuilder().setName("run-" + file).withFileName(file.toString()).withAppend(true)
                .setLayout(layout).setFilter(filter).setConfiguration(cfg).build();
        a.start();
        cfg.addAppender(a);
        cfg.getRootLogger().addAppender(a, Level.INFO, null);
        var molt = cfg.getLoggerConfig("molt");
        if (molt != cfg.getRootLogger()) {
            molt.addAppender(a, Level.INFO, null);
        }
        ctx.updateLoggers();
        return new RunLog(a);
    }

    @Override
    public void close() {
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        Configuration cfg = ctx.getConfiguration();
        cfg.getRootLogger().removeAppender(appender.getName());
        var molt = cfg.getLoggerConfig("molt");
        if (molt != cfg.getRootLogger()) {
            molt.removeAppender(appender.getName());
        }
        ctx.updateLoggers();
        appender.stop();
    }
}
