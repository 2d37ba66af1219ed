package molt.pipeline.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import molt.pipeline.report.RunReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code molt report RUN_DIR}: (re)writes the run's report.html, also while the run is still going. */
@Command(name = "report", mixinStandardHelpOptions = true,
        description = "Write RUN_DIR/report.html: losses, per-layer errors, evaluation charts and the resolved config.")
public final class ReportCommand implements Callable<Integer> {
    @Parameters(index = "0", description = "Run directory.")
    Path runDir;

    @Override
    public Integer call() throws Exception {
        System.out.println(RunReport.write(runDir));
        return 0;
    }
}
