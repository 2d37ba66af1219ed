package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import molt.pipeline.cli.CliTestSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PipelineTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aReducedConfigRunsEndToEndAndResumesAsDone(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path config = PipelineTestSupport.config(dir, teacher, PipelineTestSupport.corpus(dir), "");
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("layer 0") && r.out().contains("MSE") && r.out().contains("student: "), r.out());
        // Every training step of both stages moved the weights: a gradient reached them (grad_norm > 0).
        java.util.List<com.fasterxml.jackson.databind.node.ObjectNode> steps = MetricsLog.records(dir.resolve("run/metrics.jsonl"));
        assertTrue(steps.stream().anyMatch(n -> n.path("stage").asText().equals("transfer")), steps.toString());
        for (com.fasterxml.jackson.databind.JsonNode n : steps) {
            assertTrue(n.path("grad_norm").asDouble() > 0, n.toString());
            assertTrue(n.path("peak_rss_mib").asLong() > 0 && n.path("phase_s").has("backward"), n.toString());
            assertTrue(n.path("page_faults").asLong(-1) >= 0, n.toString()); // this step's minor page faults
        }
        Path run = dir.resolve("run");
        JsonNode report = JSON.readTree(run.resolve("report.json").toFile());
        Path student = Path.of(report.get("student").asText());
        assertTrue(Files.isRegularFile(student.resolve("config.json")));
        JsonNode transfer = report.path("stages").path("transfer").path("result");
        assertEquals(2, transfer.path("per_layer_mse").size(), report.toString());
        assertTrue(Files.isRegularFile(run.resolve("config.resolved.json")));
        JsonNode header = JSON.readTree(run.resolve("config.resolved.json").toFile());
        assertTrue(java.util.Set.of("f32", "f16").contains(header.path("config").path("precision").asText()),
                "the header holds the resolved precision: " + header);
        assertEquals(molt.teacher.model.Frozen.productsOn(molt.teacher.Precision.resolve(
                header.path("config").path("precision").asText(), 0), false), header.path("frozen_products").asText(),
                header.toString());
        assertTrue(header.path("allocator").isTextual(), header.toString());
        assertTrue(Files.readString(run.resolve("molt.log")).contains("stage transfer"));
        long lines = Files.readAllLines(run.resolve("metrics.jsonl")).size();
        assertEquals(8 + 4, lines, "one metrics line per optimizer step: 8 transfer + 4 finetune");

        // Native memory stays flat: after warm-up the live NDArray count does not change from step to step.
        for (String stage : new String[] {"transfer", "finetune"}) {
            java.util.List<Long> counts = new java.util.ArrayList<>();
            for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
                JsonNode n = JSON.readTree(line);
                if (n.path("stage").asText().equals(stage)) {
                    counts.add(n.path("ndarrays").asLong());
                }
            }
            for (int i = 2; i < counts.size(); i++) {
                assertEquals(counts.get(1), counts.get(i), stage + " NDArray count by step: " + counts);
            }
        }

        CliTestSupport.Run logits = CliTestSupport.run("logits", "--model", student.toString(), "--text", "The committee",
                "--out", dir.resolve("l.safetensors").toString(), "--mode", "recurrent");
        assertEquals(0, logits.exit(), logits.err());

        CliTestSupport.Run again = CliTestSupport.run("run", config.toString());
        assertEquals(0, again.exit(), again.err());
        assertEquals(lines, Files.readAllLines(run.resolve("metrics.jsonl")).size(), "finished stages are skipped");

        CliTestSupport.Run status = CliTestSupport.run("status", run.toString());
        assertEquals(0, status.exit());
        JsonNode st = JSON.readTree(status.out());
        assertEquals("done", st.path("stages").path("finetune").path("status").asText());
        assertEquals(4, st.path("stages").path("finetune").path("latest").path("step").asInt());

        CliTestSupport.Run changed = CliTestSupport.run("run", config.toString(), "--set", "stages[0].lr=0.5");
        assertEquals(2, changed.exit());
        assertTrue(changed.err().contains("stages[0].lr"), changed.err());
        // validate refuses it too, as run does, and neither touches the directory's config.
        byte[] resolved = Files.readAllBytes(dir.resolve("run/config.resolved.json"));
        CliTestSupport.Run validate = CliTestSupport.run("validate", config.toString(), "--set", "stages[0].lr=0.5");
        assertEquals(2, validate.exit());
        assertTrue(validate.err().contains("stages[0].lr"), validate.err());
        org.junit.jupiter.api.Assertions.assertArrayEquals(resolved,
                Files.readAllBytes(dir.resolve("run/config.resolved.json")));
    }

    @Test
    void klFromTheTopKCacheRunsWithoutTheTeacherOnline(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path config = PipelineTestSupport.config(dir, teacher, PipelineTestSupport.corpus(dir), "");
        Files.writeString(config, Files.readString(config).replace("stages:\n",
                "stages:\n  - name: data\n    type: data_prepare\n    top_k: 4\n"));
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString(), "--set", "stages[2].kl_source=cache",
                "--set", "stages[2].top_k=4");
        assertEquals(0, r.exit(), r.err());
        Path data = dir.resolve("run/data");
        molt.data.PreparedDataset ds = molt.data.PreparedDataset.open(data);
        Path shard = ds.shards("train").get(0);
        java.util.List<molt.data.TopKCache.Entry> cache = molt.data.TopKCache.read(molt.data.TeacherTargets.fileFor(shard));
        java.util.List<long[]> rows = molt.data.SequenceShards.read(shard);
        assertEquals(rows.size(), cache.size());
        // The cached targets are the teacher's: check one row against a fresh teacher forward.
        long[] in = java.util.Arrays.copyOf(rows.get(3), rows.get(3).length - 1);
        assertEquals(java.util.Arrays.toString(in), java.util.Arrays.toString(cache.get(3).inputIds()));
        try (molt.teacher.model.LlamaModel m = molt.teacher.model.LlamaModel.load(teacher, ai.djl.Device.cpu());
             ai.djl.ndarray.NDManager nd = ai.djl.ndarray.NDManager.newBaseManager()) {
            float[] lp = m.logits(nd, new long[][] {in}).logSoftmax(-1).toFloatArray();
            int v = m.config().vocabSize();
            for (int t = 0; t < in.length; t += 7) {
                int best = 0;
                for (int j = 1; j < v; j++) {
                    best = lp[t * v + j] > lp[t * v + best] ? j : best;
                }
                assertEquals(best, cache.get(3).topIds()[t * 4], "position " + t);
                assertEquals(lp[t * v + best], cache.get(3).topLogprobs()[t * 4], 1e-5);
            }
        }
        assertTrue(JSON.readTree(dir.resolve("run/stages/data/result.json").toFile()).path("topk_sequences").asLong() > 0);
        assertTrue(Files.readString(dir.resolve("run/molt.log")).contains("data:"), "the data_prepare stage ran first");
        CliTestSupport.Run bad = CliTestSupport.run("validate", config.toString(), "--set", "stages[2].kl_source=cache",
                "--set", "stages[2].temperature=2");
        assertEquals(2, bad.exit());
    }

    @Test
    void instructionDataTrainsOnResponsesOnly(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 80; i++) {
            sb.append("{\"prompt\": \"Summarise item ").append(i).append(".\", \"response\": \"Item ").append(i)
                    .append(" was adopted.\"}\n");
        }
        Path data = dir.resolve("inst.jsonl");
        Files.writeString(data, sb);
        Path config = PipelineTestSupport.config(dir, teacher, data, "");
        Files.writeString(config, Files.readString(config).replace("  seq_len: 32\n",
                "  seq_len: 32\n  prompt_column: prompt\n  response_column: response\n"));
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(molt.data.PreparedDataset.open(dir.resolve("run/data")).masked());
    }

    @Test
    void parameterFreeMixersSkipTransferAndOtherFamiliesTrain(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path config = PipelineTestSupport.config(dir, teacher, PipelineTestSupport.corpus(dir), "");
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString(), "--set", "student.mixer=gla_liger",
                "--set", "student.layers={1: mamba2}");
        assertEquals(0, r.exit(), r.err());
        JsonNode report = JSON.readTree(dir.resolve("run/report.json").toFile());
        assertEquals(8, report.path("stages").path("transfer").path("result").path("steps").asInt(),
                "the mamba2 layer trains from the teacher's hidden state and un-rotated q, k");
        Path student = Path.of(report.get("student").asText());
        CliTestSupport.Run logits = CliTestSupport.run("logits", "--model", student.toString(), "--tokens", "1,2,3,4,5",
                "--out", dir.resolve("l.safetensors").toString(), "--mode", "recurrent");
        assertEquals(0, logits.exit(), logits.err());

        Path only = Files.createDirectories(dir.resolve("only"));
        Path cfg2 = PipelineTestSupport.config(only, teacher, PipelineTestSupport.corpus(dir), "");
        CliTestSupport.Run r2 = CliTestSupport.run("run", cfg2.toString(), "--set", "student.mixer=gla_liger");
        assertEquals(0, r2.exit(), r2.err());
        JsonNode rep2 = JSON.readTree(only.resolve("run/report.json").toFile());
        assertEquals(false, rep2.path("stages").path("transfer").path("result").path("trained").asBoolean(true));
        assertTrue(Files.readString(only.resolve("run/molt.log")).contains("nothing to do"));
    }

    @Test
    void theEvaluateStageComparesTeacherAndStudent(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path config = PipelineTestSupport.config(dir, teacher, PipelineTestSupport.corpus(dir),
                "  - name: eval\n    type: evaluate\n    sequences: 2\n    probes: 2\n    distances: [16, 24]\n"
                        + "    contexts: [16, 64]\n");
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("recall@16") && r.out().contains("teacher") && r.out().contains("student"), r.out());
        JsonNode res = JSON.readTree(dir.resolve("run/stages/eval/result.json").toFile());
        for (String who : new String[] {"teacher", "student"}) {
            assertTrue(res.path(who).path("perplexity").asDouble() > 1, res.toString());
            assertEquals(2, res.path(who).path("recall").size());
            assertEquals(2, res.path(who).path("decode").size());
        }
        // The softmax teacher's cache grows with the context; the student's state does not.
        JsonNode td = res.path("teacher").path("decode");
        JsonNode sd = res.path("student").path("decode");
        assertTrue(td.get(1).path("state_bytes").asLong() > td.get(0).path("state_bytes").asLong());
        assertEquals(sd.get(0).path("state_bytes").asLong(), sd.get(1).path("state_bytes").asLong());
    }

    @Test
    void theInductionCurriculumAddsItsStepsAndCountsTheirTokens(@TempDir Path dir) throws Exception {
        String curriculum = String.join("\n", "    repeat_warmup_steps: 3", "    repeat_seq_len: 16",
                "    repeat_sequences: 4", "    repeat_min_period: 2", "    repeat_max_period: 6", "    repeat_every: 4",
                "    val_every: 10", "    val_batches: 1");
        Path config = PipelineTestSupport.pretrainConfig(dir, "run", "checkpoint:\n  every_steps: 5", curriculum, "");
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString());
        assertEquals(0, r.exit(), r.err());
        // 640 tokens of 32 are 20 corpus steps; 3 warmup steps of 4 x 16 tokens, then one step of 2 x 32 tokens
        // (the warmup's 64 tokens per step) after every 4 corpus steps: 5 more.
        java.util.List<JsonNode> steps = new java.util.ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("run/metrics.jsonl"))) {
            JsonNode n = JSON.readTree(line);
            if (n.path("stage").asText().equals("pretrain") && n.has("step")) {
                steps.add(n);
            }
        }
        assertEquals(28, steps.size());
        // Validations and checkpoints (every 5 steps) save the weights; saving leaks nothing.
        for (JsonNode n : steps) {
            assertEquals(steps.get(1).path("ndarrays").asLong(), n.path("ndarrays").asLong(), "arrays at " + n);
        }
        long[] expected = new long[28];
        long total = 0;
        for (int i = 0; i < 28; i++) {
            boolean repeated = i < 3 || (i - 3 + 1) % 5 == 0;
            total += i < 3 ? 4 * 16 : repeated ? 2 * 32 : 32;
            expected[i] = total;
        }
        for (int i = 0; i < 28; i++) {
            assertEquals(expected[i], steps.get(i).path("tokens").asLong(), "tokens after step " + (i + 1));
        }
        JsonNode result = JSON.readTree(dir.resolve("run/report.json").toFile()).path("stages").path("pretrain")
                .path("result");
        assertEquals(28, result.path("steps").asLong());
        assertEquals(640 + 3 * 64 + 5 * 64, result.path("tokens").asLong());
        // The curriculum is part of what determines the teacher: without it, another cached teacher.
        Files.writeString(config, Files.readString(config).replace("output_dir: " + dir.resolve("run"),
                "output_dir: " + dir.resolve("plain"))
                .replace("repeat_warmup_steps: 3", "repeat_warmup_steps: 0").replace("repeat_every: 4", "repeat_every: 0"));
        assertEquals(0, CliTestSupport.run("run", config.toString()).exit());
        assertNotEquals(JSON.readTree(dir.resolve("run/report.json").toFile()).get("teacher").asText(),
                JSON.readTree(dir.resolve("plain/report.json").toFile()).get("teacher").asText());
        assertEquals(640, JSON.readTree(dir.resolve("plain/report.json").toFile()).path("stages").path("pretrain")
                .path("result").path("tokens").asLong());
    }

    @Test
    void aTeacherTrainedFromScratchIsCachedAndDistilled(@TempDir Path dir) throws Exception {
        String student = "seed: 1\nstudent:\n  mixer: hedgehog_window\n  feature_dim: 4\n  window: 8\n  chunk_size: 16";
        String stages = String.join("\n", "  - name: transfer", "    type: attention_transfer", "    tokens: 128",
                "    val_batches: 2", "  - name: export", "    type: export");
        Path config = PipelineTestSupport.pretrainConfig(dir, "run1", student, "    val_every: 5\n    val_batches: 2",
                stages);
        CliTestSupport.Run r = CliTestSupport.run("run", config.toString());
        assertEquals(0, r.exit(), r.err());
        JsonNode report = JSON.readTree(dir.resolve("run1/report.json").toFile());
        Path teacher = Path.of(report.get("teacher").asText());
        assertTrue(teacher.startsWith(dir.resolve("cache")), teacher.toString());
        assertTrue(Files.isRegularFile(teacher.resolve("tokenizer.json")));
        double first = 0;
        double last = 0;
        for (String line : Files.readAllLines(dir.resolve("run1/metrics.jsonl"))) {
            JsonNode n = JSON.readTree(line);
            if (n.path("stage").asText().equals("pretrain")) {
                first = first == 0 ? n.path("loss").asDouble() : first;
                last = n.path("loss").asDouble();
            }
        }
        assertTrue(last < first, "pretraining lowers the loss: " + first + " -> " + last);
        // The cached teacher is an ordinary model directory.
        CliTestSupport.Run gen = CliTestSupport.run("--debug", "generate", "--model", teacher.toString(), "--prompt", "The",
                "--max-tokens", "4");
        assertEquals(0, gen.exit(), gen.err());

        Files.writeString(config, Files.readString(config).replace("output_dir: " + dir.resolve("run1"),
                "output_dir: " + dir.resolve("run2")));
        CliTestSupport.Run again = CliTestSupport.run("run", config.toString());
        assertEquals(0, again.exit(), again.err());
        assertTrue(Files.readString(dir.resolve("run2/molt.log")).contains("reusing the cached teacher"));
        assertEquals(teacher.toString(), JSON.readTree(dir.resolve("run2/report.json").toFile()).get("teacher").asText());
        // The reused teacher reports the training that made it.
        JsonNode made = JSON.readTree(dir.resolve("run1/report.json").toFile()).path("stages").path("pretrain").path("result");
        JsonNode reused = JSON.readTree(dir.resolve("run2/report.json").toFile()).path("stages").path("pretrain").path("result");
        assertTrue(reused.path("cached").asBoolean());
        assertEquals(made.path("tokens").asLong(), reused.path("tokens").asLong());
        assertEquals(made.path("best_val_loss").asDouble(), reused.path("best_val_loss").asDouble());
    }
}
