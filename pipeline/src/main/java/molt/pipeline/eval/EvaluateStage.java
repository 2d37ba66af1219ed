package molt.pipeline.eval;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import molt.pipeline.config.RunConfig;
import molt.pipeline.train.StageContext;
import molt.student.StudentCheckpoint;
import molt.teacher.io.AtomicFiles;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.LlamaModel;
import molt.teacher.tokenizer.TextTokenizer;
import molt.teacher.tokenizer.Tokenizers;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The {@code evaluate} stage: the teacher and the run's latest exported student on the same held-out data, side by
 * side (perplexity, recall at each distance, decode speed and state bytes at each context), into result.json.
 */
public final class EvaluateStage {
    private static final Logger LOG = LogManager.getLogger(EvaluateStage.class);

    private EvaluateStage() {
    }

    public static void run(StageContext ctx, Device device, Path student) throws IOException {
        RunConfig.Eval e = ctx.stage().eval();
        Evaluator.Settings s = new Evaluator.Settings(e.sequences(), e.distances(), e.probes(), 12, e.contexts(), 16);
        TextTokenizer tok = Tokenizers.load(ctx.teacherDir());
        Map<String, ObjectNode> results = new LinkedHashMap<>();
        try (LanguageModel t = LlamaModel.load(ctx.teacherDir(), device)) {
            results.put("teacher", Evaluator.evaluate(t, tok, ctx.data(), s));
        }
        if (student != null) {
            try (LanguageModel st = StudentCheckpoint.load(student, device)) {
                results.put("student", Evaluator.evaluate(st, tok, ctx.data(), s));
            }
        } else {
            LOG.info("{}: no export stage before this one: only the teacher is evaluated", ctx.stage().name());
        }
        String table = Evaluator.table(results);
        LOG.info("{}:\n{}", ctx.stage().name(), table);
        ObjectMapper json = new ObjectMapper();
        ObjectNode out = json.createObjectNode();
        results.forEach(out::set);
        out.put("table", table);
        AtomicFiles.writeString(ctx.stageDir().resolve("result.json"),
                json.writerWithDefaultPrettyPrinter().writeValueAsString(out));
        System.out.print(table);
    }
}
