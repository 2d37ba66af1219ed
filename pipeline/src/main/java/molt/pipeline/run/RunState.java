package molt.pipeline.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import molt.pipeline.config.RunConfig;
import molt.teacher.io.AtomicFiles;

/** {@code run.json}: each stage's status (pending, running, stopped, failed, done) and duration. */
public final class RunState {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private final ObjectNode root;

    private RunState(Path file, ObjectNode root) {
        this.file = file;
        this.root = root;
    }

    static RunState load(Path dir, RunConfig cfg) throws IOException {
        Path f = dir.resolve("run.json");
        ObjectNode root = Files.isRegularFile(f) ? (ObjectNode) JSON.readTree(f.toFile()) : JSON.createObjectNode();
        ObjectNode stages = root.withObject("/stages");
        for (RunConfig.Stage s : cfg.stages()) {
            if (!stages.has(s.name())) {
                stages.putObject(s.name()).put("type", s.type()).put("status", "pending");
            }
        }
        RunState st = new RunState(f, root);
        st.save();
        return st;
    }

    boolean done(String stage) {
        return "done".equals(root.path("stages").path(stage).path("status").asText());
    }

    double seconds(String stage) {
        return root.path("stages").path(stage).path("seconds").asDouble(0);
    }

    void set(String stage, String status) throws IOException {
        root.withObject("/stages").withObject("/" + stage).put("status", status);
        save();
    }

    void finish(String stage, double seconds) throws IOException {
        ObjectNode s = root.withObject("/stages").withObject("/" + stage);
        s.put("status", "done");
        s.put("seconds", s.path("seconds").asDouble(0) + seconds);
        save();
    }

    private void save() throws IOException {
        AtomicFiles.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    }
}
