package molt.pipeline.run;

import java.nio.file.Path;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.Appender;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.FileAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.layout.PatternLayout;

/** Adds the run directory's log file ({@code molt.log}) to Log4j2 for the duration of a run. */
public final class RunLog implements AutoCloseable {
    private final Appender appender;

    private RunLog(Appender appender) {
        this.appender = appender;
    }

    public static RunLog attach(Path file) {
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        Configuration cfg = ctx.getConfiguration();
        PatternLayout layout = PatternLayout.newBuilder().withConfiguration(cfg)
                .withPattern("%d{ISO8601} %-5level %c{1} - %msg%n").build();
        Appender a = FileAppender.newBuilder().setName("run-" + file).withFileName(file.toString()).withAppend(true)
                .setLayout(layout).setConfiguration(cfg).build();
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
