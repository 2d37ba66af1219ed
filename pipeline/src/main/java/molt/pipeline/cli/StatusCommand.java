package molt.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import molt.pipeline.run.MetricsLog;
import molt.pipeline.run.RunLock;
import molt.teacher.InputException;
import molt.teacher.io.JsonFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * {@code molt status RUN_DIR}: stage states and the latest metrics, as JSON. Whether a process is still working on
 * the run comes from the run lock, so a stage left {@code running} by a killed process reads {@code interrupted}.
 */
@Command(name = "status", mixinStandardHelpOptions = true,
        description = "Print a run directory's stage states and latest metrics as JSON.")
public final class StatusCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Parameters(index = "0", description = "Run directory.")
    Path runDir;

    @Override
    public Integer call() throws Exception {
        if (!Files.isDirectory(runDir)) {
            throw new InputException(runDir, "is not a directory");
        }
        Path state = runDir.resolve("run.json");
        boolean live = RunLock.isHeld(runDir);
        ObjectNode out = JSON.createObjectNode();
        out.put("run_dir", runDir.toAbsolutePath().normalize().toString());
        out.put("process", live ? "running" : "not running");
        if (!Files.isRegularFile(state)) {
            if (!Files.isRegularFile(runDir.resolve("config.resolved.json"))) {
                throw new InputException(runDir, "is not a molt run directory (no run.json or config.resolved.json)");
            }
            // The run stopped (or is) before its stages were listed: preparing its data.
            out.put("phase", live ? "preparing data" : "interrupted while preparing data (run it again to resume)");
            out.putObject("stages");
        } else {
            out.set("stages", stages(JsonFiles.readObject(state).path("stages"), latestMetrics(), live));
        }
        out.put("report", Files.isRegularFile(runDir.resolve("report.json"))
                ? runDir.resolve("report.json").toString() : null);
        System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(out));
        return 0;
    }

    /** Each stage's entry with its latest metrics line; {@code running} without a live process is interrupted. */
    private static ObjectNode stages(JsonNode stages, ObjectNode latest, boolean live) {
        ObjectNode st = JSON.createObjectNode();
        stages.fields().forEachRemaining(e -> {
            ObjectNode s = e.getValue().deepCopy();
            if (!live && "running".equals(s.path("status").asText())) {
                s.put("status", "interrupted");
            }
            if (latest.has(e.getKey())) {
                s.set("latest", latest.get(e.getKey()));
            }
            st.set(e.getKey(), s);
        });
        return st;
    }

    /** The last metrics line of each stage (for a stage trained in layer groups, its latest group's). */
    private ObjectNode latestMetrics() throws IOException {
        ObjectNode latest = JSON.createObjectNode();
        for (ObjectNode n : MetricsLog.records(runDir.resolve("metrics.jsonl"))) {
            String id = n.path("stage").asText();
            latest.set(molt.pipeline.train.LayerGroupTransfer.stageOf(id), n);
        }
        return latest;
    }
}
