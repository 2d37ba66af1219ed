package molt.pipeline.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import molt.pipeline.Main;
import molt.pipeline.cli.CliTestSupport;
import molt.pipeline.run.MetricsLog;
import molt.pipeline.run.PipelineTestSupport;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Attention transfer in layer groups: the merged weights do not depend on the grouping, each layer trains with its
 * own schedule and clipping, a killed run resumes to the same bytes, and a damaged group is trained again.
 */
class LayerGroupsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A 4-layer teacher, so that 1, 2, 3 and 4 groups all differ. */
    private static Path teacher(Path dir) throws Exception {
        Path t = TinyCheckpoints.builder().layers(4).hidden(32).heads(4, 2).vocab(ByteTokenizer.VOCAB)
                .write(dir.resolve("teacher"));
        new ByteTokenizer().save(t);
        return t;
    }

    /**
     * Attention transfer alone, in {@code groups} layer groups: clipping at 0.02 and a plateau schedule that halves
     * a layer's rate after one validation without improvement, so that layers trained in one loop would differ if
     * anything (a norm, a rate) were shared between them.
     */
    private static Path config(Path dir, String name, Path teacher, Path corpus, int groups, long tokens)
            throws Exception {
        String yaml = """
                name: %s
                output_dir: %s
                seed: 5
                checkpoint:
                  every_steps: 2
                  keep_last: 2
                """.formatted(name, dir.resolve(name)) + PipelineTestSupport.sources(teacher, corpus)
                + PipelineTestSupport.STUDENT + """
                stages:
                  - name: transfer
                    type: attention_transfer
                    tokens: %d
                    lr: 2.0
                    clip_norm: 0.02
                    plateau_patience: 0
                    val_every: 1
                    val_batches: 2
                    layer_groups: %d
                """.formatted(tokens, groups);
        Path f = dir.resolve(name + ".yaml");
        Files.writeString(f, yaml);
        return f;
    }

    private static Path stage(Path dir, String name) {
        return dir.resolve(name).resolve("stages/transfer");
    }

    @Test
    void theMergedWeightsAndPerLayerResultsDoNotDependOnTheGrouping(@TempDir Path dir) throws Exception {
        Path teacher = teacher(dir);
        Path corpus = PipelineTestSupport.corpus(dir);
        byte[] reference = null;
        JsonNode referenceResult = null;
        for (int groups : new int[] {1, 2, 3, 4}) {
            String name = "g" + groups;
            CliTestSupport.Run r = CliTestSupport.run("run", config(dir, name, teacher, corpus, groups, 320).toString());
            assertEquals(0, r.exit(), r.err());
            Path stage = stage(dir, name);
            byte[] merged = Files.readAllBytes(stage.resolve("final.safetensors"));
            JsonNode result = JSON.readTree(stage.resolve("result.json").toFile());
            assertEquals(groups, result.path("layer_groups").size(), result.toString());
            assertEquals(4, result.path("per_layer_mse").size(), result.toString());
            assertEquals(4, result.path("lanes").size(), result.toString());
            if (reference == null) {
                reference = merged;
                referenceResult = result;
            } else {
                assertArrayEquals(reference, merged, groups + " groups gave other weights than 1 group");
                for (String key : new String[] {"per_layer_mse", "lanes", "best_val_loss", "last_loss", "steps",
                        "tokens", "trainable_parameters", "model_parameters"}) {
                    assertEquals(referenceResult.path(key), result.path(key), key + " with " + groups + " groups");
                }
            }
            // Each group's lines carry its own id and a loss, norm and rate per layer.
            List<ObjectNode> lines = MetricsLog.records(dir.resolve(name).resolve("metrics.jsonl"));
            Set<String> ids = new HashSet<>();
            lines.forEach(n -> ids.add(n.path("stage").asText()));
            assertEquals(groups, ids.size(), ids.toString());
            assertTrue(ids.stream().allMatch(id -> id.startsWith("transfer/layers-")), ids.toString());
        }
        // The test can fail: the layers' rates and norms differ, so a shared schedule or a shared clipping norm
        // would have changed the result.
        List<ObjectNode> lines = MetricsLog.records(dir.resolve("g1/metrics.jsonl"));
        Set<Double> lastRates = new HashSet<>();
        lines.get(lines.size() - 1).path("lanes").forEach(l -> lastRates.add(l.path("lr").asDouble()));
        assertTrue(lastRates.size() > 1, "every layer ended at the same rate: " + lines.get(lines.size() - 1));
        Set<Double> norms = new HashSet<>();
        lines.get(0).path("lanes").forEach(l -> norms.add(l.path("grad_norm").asDouble()));
        assertEquals(4, norms.size(), lines.get(0).toString());
        assertTrue(lines.get(0).path("lanes").path("layer_0").path("grad_norm").asDouble() > 0.02, "clipping is active");

        // All layers together (layer_groups: 0, one schedule and one clipping norm) is another training.
        CliTestSupport.Run together = CliTestSupport.run("run", config(dir, "g0", teacher, corpus, 0, 320).toString());
        assertEquals(0, together.exit(), together.err());
        assertFalse(java.util.Arrays.equals(reference, Files.readAllBytes(stage(dir, "g0").resolve("final.safetensors"))));
    }

    @Test
    void moreGroupsThanMixerLayersIsRefusedBeforeAnythingRuns(@TempDir Path dir) throws Exception {
        Path cfg = config(dir, "g5", teacher(dir), PipelineTestSupport.corpus(dir), 5, 320);
        CliTestSupport.Run r = CliTestSupport.run("validate", cfg.toString());
        assertEquals(2, r.exit(), r.out());
        assertTrue(r.err().contains("layer_groups 5 exceeds the 4 mixer layers"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    @Test
    void aDamagedGroupIsNotTakenAsFinished(@TempDir Path dir) throws Exception {
        Path cfg = config(dir, "g2", teacher(dir), PipelineTestSupport.corpus(dir), 2, 128);
        assertEquals(0, CliTestSupport.run("run", cfg.toString()).exit());
        Path group = stage(dir, "g2").resolve("groups/layers-0-1");
        assertTrue(LayerGroupTransfer.finished(group));
        Path fin = group.resolve("final.safetensors");
        byte[] bytes = Files.readAllBytes(fin);
        bytes[bytes.length - 1] ^= 1; // one bit of the last weight
        Files.write(fin, bytes);
        assertFalse(LayerGroupTransfer.finished(group));
        assertFalse(Files.exists(fin), "the damaged weights are removed, to be written again from the checkpoints");
        assertTrue(LayerGroupTransfer.finished(stage(dir, "g2").resolve("groups/layers-2-3")));
        // status shows the stage's latest line: its last group's.
        CliTestSupport.Run status = CliTestSupport.run("status", dir.resolve("g2").toString());
        assertEquals(0, status.exit(), status.err());
        assertEquals("transfer/layers-2-3", JSON.readTree(status.out()).path("stages").path("transfer").path("latest")
                .path("stage").asText(), status.out());
    }

    @Test
    void groupsSplitIntoConsecutiveRunsOfNearlyEqualSize() {
        int[] layers = {0, 2, 3, 5, 6};
        List<int[]> g = LayerGroupTransfer.split(layers, 3);
        assertArrayEquals(new int[] {0, 2}, g.get(0));
        assertArrayEquals(new int[] {3, 5}, g.get(1));
        assertArrayEquals(new int[] {6}, g.get(2));
        assertEquals("layers-3-5", LayerGroupTransfer.name(g.get(1)));
        assertEquals(1, LayerGroupTransfer.split(layers, 1).size());
        assertEquals(5, LayerGroupTransfer.split(layers, 5).size());
    }

    private static Process start(Path config, Path log) throws Exception {
        return new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(), "run", config.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    private static long latestStep(Path groupDir) {
        try {
            Path index = groupDir.resolve("checkpoints/checkpoints.json");
            if (!Files.isRegularFile(index)) {
                return -1;
            }
            JsonNode kept = JSON.readTree(index.toFile()).path("kept");
            return kept.size() == 0 ? -1 : kept.get(kept.size() - 1).path("step").asLong();
        } catch (Exception e) {
            return -1; // the index is being replaced
        }
    }

    @Test
    void aRunKilledInItsSecondGroupResumesToTheSameBytes(@TempDir Path dir) throws Exception {
        Path teacher = teacher(dir);
        Path corpus = PipelineTestSupport.corpus(dir);
        long tokens = 1600; // 50 steps of 32 tokens per group: the kill lands between checkpoints of the second group
        CliTestSupport.Run straight = CliTestSupport.run("run", config(dir, "a", teacher, corpus, 2, tokens).toString());
        assertEquals(0, straight.exit(), straight.err());

        Path cfg = config(dir, "b", teacher, corpus, 2, tokens);
        Process killed = start(cfg, dir.resolve("b1.log"));
        Path second = stage(dir, "b").resolve("groups/layers-2-3");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
        while (latestStep(second) < 4 && System.nanoTime() < deadline && killed.isAlive()) {
            Thread.sleep(5);
        }
        killed.destroyForcibly(); // SIGKILL
        assertTrue(killed.waitFor(30, TimeUnit.SECONDS));
        long at = latestStep(second);
        assertTrue(at >= 4 && at < 50, "killed inside the second group: " + at + "\n" + Files.readString(dir.resolve("b1.log")));

        Process resumed = start(cfg, dir.resolve("b2.log"));
        assertTrue(resumed.waitFor(300, TimeUnit.SECONDS));
        assertEquals(0, resumed.exitValue(), Files.readString(dir.resolve("b2.log")));
        String log = Files.readString(dir.resolve("b/molt.log"));
        assertTrue(log.contains("layers 0-1 already trained") && log.contains("resuming at step"), log);
        for (String f : new String[] {"final.safetensors", "groups/layers-0-1/final.safetensors",
                "groups/layers-2-3/final.safetensors"}) {
            assertArrayEquals(Files.readAllBytes(stage(dir, "a").resolve(f)), Files.readAllBytes(stage(dir, "b").resolve(f)),
                    f + " differs between the uninterrupted and the killed-and-resumed run");
        }
        // One metrics line per step and group, as in the uninterrupted run.
        assertEquals(Files.readAllLines(dir.resolve("a/metrics.jsonl")).size(),
                Files.readAllLines(dir.resolve("b/metrics.jsonl")).size());
        assertNotEquals(0, Files.readAllLines(dir.resolve("b/metrics.jsonl")).size());
    }
}
