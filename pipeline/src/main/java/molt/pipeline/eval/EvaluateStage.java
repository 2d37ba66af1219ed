package molt.pipeline.eval;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import molt.pipeline.config.EvaluateSpec;
import molt.pipeline.config.RunConfig;
import molt.pipeline.config.StageSpec;
import molt.pipeline.config.TeacherPretrainSpec;
import molt.pipeline.config.TrainingSpec;
import molt.pipeline.train.StageContext;
import molt.student.StudentCheckpoint;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.JsonFiles;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.LlamaModel;
import molt.teacher.tokenizer.TextTokenizer;
import molt.teacher.tokenizer.Tokenizers;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The {@code evaluate} stage: the teacher and every student the run exported (its own, then each variant's) on the
 * same held-out data, side by side: perplexity, recall at each distance, the fraction of parameters trained, the
 * tokens used and the seconds of each training stage, then decode speed and state bytes at each context. Each row
 * goes into result.json under its name; the tables are printed and stored there too.
 */
public final class EvaluateStage {
    private static final Logger LOG = LogManager.getLogger(EvaluateStage.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private EvaluateStage() {
    }

    /** A training stage that made a student: its config name, directory (with result.json) and seconds. */
    public record StageRecord(String name, Path dir, double seconds) {
    }

    /** An exported student to evaluate, with the stages of its chain that ran (skipped ones absent). */
    public record Target(String name, String description, Path model, List<StageRecord> stages) {
    }

    /** Evaluates the teacher and the students exported so far ({@link StageContext#students}). */
    public static void run(StageContext ctx, Device device) throws IOException {
        EvaluateSpec e = ctx.stage(EvaluateSpec.class);
        List<Target> students = ctx.students();
        Evaluator.Settings s = e.settings();
        TextTokenizer tok = Tokenizers.load(ctx.teacherDir());
        Map<String, ObjectNode> results = new LinkedHashMap<>();
        try (LanguageModel t = LlamaModel.load(ctx.teacherDir(), device, ctx.config().frozenPrecision())) {
            ObjectNode r = Evaluator.evaluate(t, tok, ctx.data(), s);
            r.put("description", ctx.config().pretrainStage() != null ? "teacher (trained here)" : "teacher");
            r.put("model", ctx.teacherDir().toAbsolutePath().normalize().toString());
            teacherTraining(ctx, t.config(), r);
            results.put("teacher", r);
        }
        if (students.isEmpty()) {
            LOG.info("{}: no export stage before this one: only the teacher is evaluated", ctx.stage().name());
        }
        for (Target target : students) {
            LOG.info("{}: evaluating {} ({})", ctx.stage().name(), target.name(), target.model());
            try (LanguageModel st = StudentCheckpoint.load(target.model(), device, ctx.config().frozenPrecision())) {
                ObjectNode r = Evaluator.evaluate(st, tok, ctx.data(), s);
                r.put("description", target.description());
                r.put("model", target.model().toAbsolutePath().normalize().toString());
                studentTraining(target, r);
                results.put(target.name(), r);
            }
        }
        List<String> stageColumns = stageColumns(ctx.config(), students);
        String table = Evaluator.table(results, stageColumns) + "\n" + Evaluator.decodeTable(results);
        LOG.info("{}:\n{}", ctx.stage().name(), table);
        ObjectNode out = JSON.createObjectNode();
        results.forEach(out::set);
        out.put("table", table);
        AtomicFiles.writeString(ctx.stageDir().resolve("result.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(out));
        System.out.print(table);
    }

    /** Training stage columns: the teacher's pretraining (if any), then the students' stages in config order. */
    private static List<String> stageColumns(RunConfig cfg, List<Target> students) {
        List<String> cols = new ArrayList<>();
        for (StageSpec st : cfg.stages()) {
            boolean used = st instanceof TeacherPretrainSpec || students.stream()
                    .anyMatch(t -> t.stages().stream().anyMatch(r -> r.name().equals(st.name())));
            if (used && st instanceof TrainingSpec) {
                cols.add(st.name());
            }
        }
        return cols;
    }

    /** The teacher's training: all of it when this run pretrained it (its seconds 0 when the cache had it). */
    private static void teacherTraining(StageContext ctx, LlamaConfig c, ObjectNode r) throws IOException {
        long total = LlamaWeights.parameterCount(c);
        r.put("model_parameters", total);
        ObjectNode seconds = r.putObject("stage_seconds");
        TeacherPretrainSpec pt = ctx.config().pretrainStage();
        if (pt == null) {
            return;
        }
        Path dir = ctx.runDir().resolve("stages").resolve(pt.name());
        JsonNode res = read(dir.resolve("result.json"));
        boolean cached = res.path("cached").asBoolean(false);
        r.put("trained_parameters", total);
        r.put("trained_fraction", 1.0);
        r.put("tokens", res.path("tokens").asLong(pt.training().tokens()));
        r.put("teacher_cached", cached);
        JsonNode run = read(ctx.runDir().resolve("run.json"));
        seconds.put(pt.name(), run.path("stages").path(pt.name()).path("seconds").asDouble(0));
    }

    /** A student's training: parameters trained and tokens summed over its chain's stages, seconds per stage. */
    private static void studentTraining(Target target, ObjectNode r) throws IOException {
        long trained = 0;
        long total = 0;
        long tokens = 0;
        ObjectNode seconds = r.putObject("stage_seconds");
        for (StageRecord st : target.stages()) {
            JsonNode res = read(st.dir().resolve("result.json"));
            trained += res.path("trainable_parameters").asLong(0);
            total = Math.max(total, res.path("model_parameters").asLong(0));
            tokens += res.path("tokens").asLong(0);
            seconds.put(st.name(), st.seconds());
        }
        r.put("model_parameters", total);
        r.put("trained_parameters", trained);
        r.put("trained_fraction", total == 0 ? 0 : (double) trained / total);
        r.put("tokens", tokens);
    }

    private static JsonNode read(Path file) throws IOException {
        return JsonFiles.readObjectOrEmpty(file);
    }
}
