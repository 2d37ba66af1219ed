package molt.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import molt.teacher.InputException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code molt status RUN_DIR}: stage states and the latest metrics, as JSON. */
@Command(name = "status", mixinStandardHelpOptions = true,
        description = "Print a run directory's stage states and latest metrics as JSON.")
public final class StatusCommand implements Callable<Integer> {
    @Parameters(index = "0", description = "Run directory.")
    Path runDir;

    @Override
    public Integer call() throws Exception {
        Path state = runDir.resolve("run.json");
        if (!Files.isRegularFile(state)) {
            throw new InputException(runDir, "is not a molt run directory (no run.json)");
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode out = json.createObjectNode();
        out.put("run_dir", runDir.toAbsolutePath().normalize().toString());
        JsonNode stages = json.readTree(state.toFile()).path("stages");
        ObjectNode latest = json.createObjectNode();
        Path metrics = runDir.resolve("metrics.jsonl");
        if (Files.isRegularFile(metrics)) {
            for (String line : Files.readAllLines(metrics)) {
                try {
                    JsonNode n = json.readTree(line);
                    latest.set(n.path("stage").asText(), n);
                } catch (Exception e) {
                    // a line cut by a kill
                }
            }
        }
        ObjectNode st = out.putObject("stages");
        stages.fields().forEachRemaining(e -> {
            ObjectNode s = e.getValue().deepCopy();
            if (latest.has(e.getKey())) {
                s.set("latest", latest.get(e.getKey()));
            }
            st.set(e.getKey(), s);
        });
        out.put("report", Files.isRegularFile(runDir.resolve("report.json"))
                ? runDir.resolve("report.json").toString() : null);
        System.out.println(json.writerWithDefaultPrettyPrinter().writeValueAsString(out));
        return 0;
    }
}
