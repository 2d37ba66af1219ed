package molt.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.pipeline.run.KeptTeacher;
import molt.pipeline.run.MetricsLog;
import molt.pipeline.run.Runner;
import molt.pipeline.run.StopSignal;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run on Spark in local[2,4] mode (two task threads, four attempts per task) against the same run in one process:
 * the teacher's top-k targets (one task per shard), attention transfer in two layer groups (one task per group), a
 * variant beside the run's own student, LoRA on the top-k cache and export. One group's first attempt is stopped
 * mid-training; Spark retries it, and every weight and target file is byte-identical to the one-process run's. A
 * second submission over the finished directory, with its stages marked unfinished, keeps what is complete.
 */
class SparkRunTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void aSparkRunWritesTheOneProcessBytesAndARetriedTaskChangesNothing() throws Exception {
        Path config = SparkTestRuns.config(tmp);
        Path run = tmp.resolve("run");

        Runner.run(load(config), StopSignal.manual());
        Path oneProcess = Files.move(run, tmp.resolve("one-process"));

        SparkConf conf = new SparkConf().setMaster("local[2,4]").setAppName("molt-test").set("spark.ui.enabled", "false")
                .set(SparkDispatcher.STOP_ONCE, "transfer/group-1").set(SparkDispatcher.STOP_AFTER, "3");
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            int loads = KeptTeacher.loads();
            Runner.run(load(config), StopSignal.manual(), new SparkDispatcher(sc, config, List.of()));
            Map<String, byte[]> want = SparkTestRuns.outputs(oneProcess);
            long shards = want.keySet().stream().filter(k -> k.contains("topk-") && k.endsWith(".parquet")).count();
            assertTrue(shards >= 2, "top-k targets of several shards: " + want.keySet());
            assertEquals(loads + 1, KeptTeacher.loads(), "one executor JVM loads the teacher once for its shards");
            assertTrue(want.keySet().stream().anyMatch(k -> k.contains("groups/layers-1-1")), "groups: " + want.keySet());
            assertTrue(want.keySet().stream().anyMatch(k -> k.contains("wide/export")), "variant: " + want.keySet());
            SparkTestRuns.assertSameBytes(want, SparkTestRuns.outputs(run));

            String log = Files.readString(run.resolve("molt.log"));
            assertTrue(log.contains("transfer/group-1: attempt 0 (a stop is injected)"), "the fault was injected");
            assertTrue(log.contains("transfer/group-1: attempt 1"), "and the task retried");
            assertTrue(log.contains("wide/finetune: attempt 0"), "executor lines reach molt.log");
            assertEquals(steps(oneProcess), steps(run), "metrics.jsonl: every step once, with the same loss");
            assertEquals(stageResults(oneProcess), stageResults(run), "report.json's stage results");
            assertTrue(run.resolve("report.html").toFile().isFile());
            try (Stream<Path> parts = Files.list(run.resolve("parts"))) {
                assertEquals(0, parts.count(), "part files are merged and removed");
            }

            // A repeated submission whose driver lost track of the stages: complete work is kept, bytes unchanged.
            ObjectNode state = (ObjectNode) JSON.readTree(run.resolve("run.json").toFile());
            state.with("stages").fields().forEachRemaining(e -> ((ObjectNode) e.getValue()).put("status", "running"));
            JSON.writeValue(run.resolve("run.json").toFile(), state);
            Runner.run(load(config), StopSignal.manual(), new SparkDispatcher(sc, config, List.of()));
            SparkTestRuns.assertSameBytes(want, SparkTestRuns.outputs(run));
            assertTrue(Files.readString(run.resolve("molt.log")).contains("layers 1-1 already trained"));
            assertEquals(steps(oneProcess), steps(run), "no step logged twice");
        }
    }

    private static RunConfig load(Path config) {
        return Runner.resolve(ConfigLoader.load(config, List.of()));
    }

    /** metrics.jsonl's training records as "stage step loss" lines, sorted (units run side by side). */
    private static List<String> steps(Path run) throws Exception {
        List<String> out = new ArrayList<>();
        for (ObjectNode r : MetricsLog.records(run.resolve("metrics.jsonl"))) {
            if (r.has("step") && r.has("loss")) {
                out.add(r.path("stage").asText() + " " + r.path("step").asLong() + " " + r.path("loss").asText());
            }
        }
        out.sort(null);
        return out;
    }

    /** report.json's per-stage results without timings. */
    private static Map<String, JsonNode> stageResults(Path run) throws Exception {
        Map<String, JsonNode> out = new TreeMap<>();
        JSON.readTree(run.resolve("report.json").toFile()).path("stages").fields().forEachRemaining(e -> {
            JsonNode r = e.getValue().path("result").deepCopy();
            if (r instanceof ObjectNode o) {
                o.remove(List.of("seconds", "tokens_per_s", "dataset", "peak_rss_bytes"));
            }
            out.put(e.getKey(), r);
        });
        return out;
    }
}
