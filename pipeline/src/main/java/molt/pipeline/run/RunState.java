package molt.pipeline.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.JsonFiles;

/**
 * {@code run.json}: each stage's status (pending, running, stopped, failed, done) and duration, and under
 * {@code plans} each chain's choice of softmax layers when its student asks for {@code softmax_layers: auto}.
 */
public final class RunState {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private final ObjectNode root;

    private RunState(Path file, ObjectNode root) {
        this.file = file;
        this.root = root;
    }

    /** Loads run.json (or starts it) with every stage id of {@code stages} ({id, type}) listed. */
    static RunState load(Path dir, java.util.List<String[]> stages) throws IOException {
        Path f = dir.resolve("run.json");
        ObjectNode root = JsonFiles.readObjectOrEmpty(f);
        ObjectNode byId = root.withObject("/stages");
        for (String[] s : stages) {
            if (!byId.has(s[0])) {
                byId.putObject(s[0]).put("type", s[1]).put("status", "pending");
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
        entry(stage).put("status", status);
        save();
    }

    void finish(String stage, double seconds) throws IOException {
        ObjectNode s = entry(stage);
        s.put("status", "done");
        s.put("seconds", s.path("seconds").asDouble(0) + seconds);
        save();
    }

    /** The choice {@code softmax_layers: auto} made for a student chain, or null when none was made yet. */
    HybridPlan.Choice plan(String chain) {
        JsonNode n = root.path("plans").path(chain);
        return n.isObject() ? HybridPlan.Choice.fromJson(n) : null;
    }

    /** Records a chain's choice (made once; resumed runs read it back). */
    void setPlan(String chain, HybridPlan.Choice choice) throws IOException {
        root.withObject("/plans").set(chain, choice.toJson());
        save();
    }

    /** Every chain's choice, as stored. */
    ObjectNode plans() {
        return root.path("plans").isObject() ? (ObjectNode) root.get("plans") : JSON.createObjectNode();
    }

    /** A stage's entry; ids may hold '/' (variant/stage), so this is a property, not a JSON pointer. */
    private ObjectNode entry(String stage) {
        return root.withObject("/stages").withObjectProperty(stage);
    }

    private void save() throws IOException {
        AtomicFiles.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    }
}
