package molt.pipeline.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import molt.pipeline.cli.CliTestSupport;
import molt.pipeline.run.ResolvedConfig;
import molt.teacher.InputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigTest {
    private static final String MINIMAL = """
            name: t
            teacher:
              path: /models/x
            stages:
              - name: transfer
                type: attention_transfer
                tokens: 1000
              - name: export
                type: export
            """;

    private static Path write(Path dir, String name, String yaml) throws Exception {
        Path f = dir.resolve(name);
        Files.createDirectories(f.getParent());
        Files.writeString(f, yaml);
        return f;
    }

    private static String error(Path file, String... sets) {
        InputException e = assertThrows(InputException.class, () -> ConfigLoader.load(file, List.of(sets)));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        return e.getMessage();
    }

    @Test
    void autoThreadsGiveALargeTeacherTheCoresOnOffer(@TempDir Path dir) throws Exception {
        RunConfig c = ConfigLoader.load(write(dir, "t.yaml", MINIMAL), List.of());
        assertEquals(RunConfig.AUTO_THREADS, c.threads());
        assertEquals(6, c.resolveAuto(teacher(576, 30, 49152), 6).threads(), "135M parameters: every core offered");
        assertEquals(1, c.resolveAuto(teacher(128, 2, 256), 6).threads(), "a small teacher: one thread");
        RunConfig named = ConfigLoader.load(write(dir, "t.yaml", MINIMAL), List.of("threads=3"));
        assertEquals(3, named.resolveAuto(teacher(576, 30, 49152), 6).threads(), "a number is kept");
    }

    private static molt.teacher.LlamaConfig teacher(int hidden, int layers, int vocab) {
        var json = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode()
                .put("model_type", "llama").put("vocab_size", vocab).put("hidden_size", hidden)
                .put("intermediate_size", hidden * 8 / 3).put("num_hidden_layers", layers)
                .put("num_attention_heads", hidden / 64).put("num_key_value_heads", Math.max(1, hidden / 192))
                .put("rms_norm_eps", 1e-5).put("rope_theta", 10000.0);
        return molt.teacher.LlamaConfig.fromJson(json, Path.of("teacher"));
    }

    @Test
    void defaultsAreLolcats(@TempDir Path dir) throws Exception {
        RunConfig c = ConfigLoader.load(write(dir, "t.yaml", MINIMAL), List.of());
        assertEquals("hedgehog_window", c.student().mixer());
        assertEquals(64, c.student().settings().window());
        AttentionTransferSpec transfer = (AttentionTransferSpec) c.stages().get(0);
        assertEquals(0.01, transfer.training().lr());
        assertEquals(1000, transfer.mseWeight());
        assertEquals(8, c.lora().rank());
        assertEquals(16, c.lora().alpha());
        assertEquals(List.of("q", "k", "v", "o"), c.lora().targets());
        assertEquals(Path.of("runs/t"), c.outputDir());
        assertEquals("cpu", c.device());
    }

    @Test
    void variantsRestateOnlyWhatTheyChange(@TempDir Path dir) throws Exception {
        Path f = write(dir, "v.yaml", MINIMAL + """
                student:
                  window: 32
                  feature_dim: 16
                variants:
                  no_window:
                    description: without the window
                    student: {mixer: hedgehog}
                  control:
                    student: {mixer: softmax}
                    lora: {rank: 4}
                    skip: [transfer]
                """);
        RunConfig c = ConfigLoader.load(f, List.of());
        assertEquals(2, c.variants().size());
        RunConfig.Variant nw = c.variants().get(0);
        assertEquals("no_window", nw.name());
        assertEquals("hedgehog", nw.student().mixer());
        assertEquals(32, nw.student().settings().window(), "the run's student settings carry over");
        assertEquals(16, nw.student().settings().featureDim());
        assertEquals(8, nw.lora().rank());
        RunConfig.Variant control = c.variants().get(1);
        assertEquals("softmax", control.student().mixer());
        assertEquals(4, control.lora().rank());
        assertEquals(List.of("transfer"), control.skip());
        assertEquals("hedgehog_window", c.student().mixer(), "the run's own student is unchanged");
        assertEquals("softmax", c.toJson().path("variants").path("control").path("student").path("mixer").asText());
        // A variant's config is the run's with the variant's student.
        assertEquals("hedgehog", c.forVariant(nw).student().mixer());
        assertEquals(c.stages(), c.forVariant(nw).stages());
    }

    @Test
    void variantsOverrideTheirOwnStageSettings(@TempDir Path dir) throws Exception {
        Path f = write(dir, "v.yaml", MINIMAL.replace("    tokens: 1000\n", "    tokens: 1000\n    lr: 0.01\n") + """
                variants:
                  slow:
                    student: {mixer: mamba2}
                    stages:
                      transfer: {lr: 0.001, tokens: 4000}
                  same:
                    student: {mixer: hedgehog}
                """);
        RunConfig c = ConfigLoader.load(f, List.of());
        RunConfig.Variant slow = c.variants().get(0);
        AttentionTransferSpec own = (AttentionTransferSpec) slow.stagesOf(c).get(0);
        assertEquals(0.001, own.training().lr());
        assertEquals(4000, own.training().tokens());
        assertEquals(((AttentionTransferSpec) c.stages().get(0)).mseWeight(), own.mseWeight(),
                "what the variant does not name is the run's");
        assertEquals(0.01, ((AttentionTransferSpec) c.stages().get(0)).training().lr(), "the run's stage is unchanged");
        assertEquals(own, c.forVariant(slow).stages().get(0), "the variant's config carries its stages");
        assertEquals(c.stages(), c.variants().get(1).stagesOf(c));
        var json = c.toJson().path("variants");
        assertEquals(0.001, json.path("slow").path("stages").path("transfer").path("lr").asDouble());
        assertTrue(json.path("same").path("stages").isMissingNode(), "no override, no stages key: " + json);
        // --set reaches a variant's stage too, and a different override is a different resolved config.
        RunConfig set = ConfigLoader.load(f, List.of("variants.slow.stages.transfer.lr=0.002"));
        assertEquals(0.002, ((AttentionTransferSpec) set.variants().get(0).stagesOf(set).get(0)).training().lr());
        assertTrue(ResolvedConfig.differences(c.toJson(), set.toJson()).contains("variants.slow.stages.transfer.lr"));
    }

    @Test
    void theInitialWindowFactorDefaultsToTheMixersOwn(@TempDir Path dir) throws Exception {
        Path f = write(dir, "w.yaml", MINIMAL + """
                variants:
                  ssm: {student: {mixer: mamba2_window}}
                  delta: {student: {mixer: gated_deltanet_window, window_factor_init: -1.5}}
                """);
        RunConfig c = ConfigLoader.load(f, List.of());
        assertEquals(-2.197, c.student().settings().windowFactorInit(), "hedgehog_window: LoLCATs' 0.1");
        assertEquals(1.0, c.variants().get(0).student().settings().windowFactorInit(), "mamba2_window: its own");
        assertEquals(-1.5, c.variants().get(1).student().settings().windowFactorInit(), "a value given is kept");
        RunConfig named = ConfigLoader.load(f, List.of("student.window_factor_init=0.5"));
        assertEquals(0.5, named.variants().get(0).student().settings().windowFactorInit(),
                "a variant inherits a value the run's student states");
    }

    @Test
    void badStageOverridesAreOneLineWithTheirKeyPath(@TempDir Path dir) throws Exception {
        Path export = write(dir, "e.yaml", MINIMAL + "variants:\n  x:\n    stages:\n      export: {merged: false}\n");
        assertTrue(error(export).contains("variants.x.stages.export") && error(export).contains("attention_transfer"),
                error(export));
        Path missing = write(dir, "m.yaml", MINIMAL + "variants:\n  x:\n    stages:\n      lora: {lr: 1}\n");
        assertTrue(error(missing).contains("variants.x.stages.lora"), error(missing));
        Path skipped = write(dir, "s.yaml", MINIMAL
                + "variants:\n  x:\n    skip: [transfer]\n    stages:\n      transfer: {lr: 0.1}\n");
        assertTrue(error(skipped).contains("skips stage 'transfer'"), error(skipped));
        Path type = write(dir, "t.yaml", MINIMAL + "variants:\n  x:\n    stages:\n      transfer: {type: export}\n");
        assertTrue(error(type).contains("variants.x.stages.transfer.type"), error(type));
        Path key = write(dir, "k.yaml", MINIMAL + "variants:\n  x:\n    stages:\n      transfer: {learning_rate: 1}\n");
        assertTrue(error(key).contains("learning_rate: unknown key"), error(key));
        Path value = write(dir, "v.yaml", MINIMAL + "variants:\n  x:\n    stages:\n      transfer: {tokens: many}\n");
        assertTrue(error(value).contains("v.yaml:") && error(value).contains("tokens"), error(value));
    }

    @Test
    void badVariantsAreRefusedWithTheirKeyPath(@TempDir Path dir) throws Exception {
        Path skip = write(dir, "s.yaml", MINIMAL + "variants:\n  x:\n    skip: [export]\n");
        assertTrue(error(skip).contains("variants.x.skip") && error(skip).contains("'export'"), error(skip));
        Path reserved = write(dir, "r.yaml", MINIMAL + "variants:\n  teacher:\n    skip: []\n");
        assertTrue(error(reserved).contains("variants.teacher"), error(reserved));
        Path mixer = write(dir, "m.yaml", MINIMAL + "variants:\n  x:\n    student: {mixer: nope}\n");
        assertTrue(error(mixer).contains("variants.x.student.mixer"), error(mixer));
        Path key = write(dir, "k.yaml", MINIMAL + "variants:\n  x:\n    studnet: {mixer: hedgehog}\n");
        assertTrue(error(key).contains("variants.x.studnet"), error(key));
    }

    @Test
    void errorsNameFileLineAndKeyPath(@TempDir Path dir) throws Exception {
        Path unknown = write(dir, "u.yaml", MINIMAL + "colour: blue\n");
        assertTrue(error(unknown).matches(".*u\\.yaml:10: colour: unknown key.*"), error(unknown));
        Path misspelt = write(dir, "m.yaml", MINIMAL.replace("    tokens: 1000", "    tokens: 1000\n    learning_rate: 0.1"));
        String m = error(misspelt);
        assertTrue(m.contains("m.yaml:8: stages[0].learning_rate: unknown key"), m);
        Path typo = write(dir, "ty.yaml", MINIMAL.replace("name: t\n", "name: t\nstudnet:\n  mixer: hedgehog\n"));
        assertTrue(error(typo).contains("did you mean 'student'?"), error(typo));
        Path type = write(dir, "w.yaml", MINIMAL.replace("tokens: 1000", "tokens: lots"));
        assertTrue(error(type).contains("w.yaml:7: stages[0].tokens: expected an integer, found \"lots\""), error(type));
        Path range = write(dir, "r.yaml", MINIMAL + "lora:\n  dropout: 1.5\n");
        assertTrue(error(range).contains("r.yaml:11: lora.dropout: expected a number in [0.0, 0.99]"), error(range));
        Path mixer = write(dir, "x.yaml", MINIMAL + "student:\n  mixer: hedgehg\n");
        assertTrue(error(mixer).contains("did you mean 'hedgehog'?"), error(mixer));
        Path stage = write(dir, "s.yaml", MINIMAL.replace("type: export", "type: exprot"));
        assertTrue(error(stage).contains("stages[1].type: expected one of"), error(stage));
        Path dup = write(dir, "d.yaml", MINIMAL.replace("name: export", "name: transfer"));
        assertTrue(error(dup).contains("duplicate stage name"), error(dup));
    }

    @Test
    void extendsMergesAndSetOverrides(@TempDir Path dir) throws Exception {
        write(dir, "base/b.yaml", MINIMAL + "student:\n  window: 32\n  chunk_size: 32\n");
        Path child = write(dir, "exp/c.yaml", "extends: ../base/b.yaml\nname: child\nstudent:\n  mixer: hedgehog\n");
        RunConfig c = ConfigLoader.load(child, List.of("stages[0].lr=0.5", "lora.targets=[q, v]", "stages.1.merged=false"));
        assertEquals("child", c.name());
        assertEquals("hedgehog", c.student().mixer());
        assertEquals(32, c.student().settings().window(), "inherited through the merge");
        assertEquals(0.5, ((AttentionTransferSpec) c.stages().get(0)).training().lr());
        assertEquals(List.of("q", "v"), c.lora().targets());
        assertFalse(((ExportSpec) c.stages().get(1)).merged());

        Path missing = write(dir, "e.yaml", "extends: nowhere.yaml\n" + MINIMAL);
        assertTrue(error(missing).contains("e.yaml:1: extends: ") && error(missing).contains("does not exist"),
                error(missing));
        write(dir, "loop/a.yaml", "extends: b.yaml\n");
        Path loop = write(dir, "loop/b.yaml", "extends: a.yaml\n");
        assertTrue(error(loop).contains("extends itself"), error(loop));
        Path ok = write(dir, "ok.yaml", MINIMAL);
        assertTrue(error(ok, "lr").contains("--set lr: expected key.path=value"));
        assertTrue(error(ok, "stages[5].lr=1").contains("index 5 is outside"));
        assertTrue(error(ok, "stages[0].lr=fast").contains("--set stages[0].lr=fast: stages[0].lr: expected a number"),
                error(ok, "stages[0].lr=fast"));
        assertTrue(error(ok, "stages[0].lrr=1").contains("did you mean 'lr'?"), error(ok, "stages[0].lrr=1"));
    }

    @Test
    void resolvedConfigsDiffByKey(@TempDir Path dir) throws Exception {
        Path f = write(dir, "t.yaml", MINIMAL);
        RunConfig a = ConfigLoader.load(f, List.of());
        RunConfig b = ConfigLoader.load(f, List.of("stages[0].lr=0.2", "seed=4"));
        assertEquals(List.of(), ResolvedConfig.differences(a.toJson(), a.toJson()));
        List<String> d = ResolvedConfig.differences(a.toJson(), b.toJson());
        assertTrue(d.contains("seed") && d.contains("stages[0].lr"), d.toString());
    }

    @Test
    void configsResolvedBeforeNewKeysResumeAsTheyRan(@TempDir Path dir) throws Exception {
        Path f = write(dir, "t.yaml", MINIMAL.replace("  - name: export", "  - {name: lora, type: lora_finetune, tokens: 64}\n  - name: export"));
        RunConfig now = ConfigLoader.load(f, List.of("precision=f32"));
        com.fasterxml.jackson.databind.node.ObjectNode old = now.toJson().deepCopy();
        old.remove("precision");
        old.withArray("stages").forEach(st -> ((com.fasterxml.jackson.databind.node.ObjectNode) st).remove("recompute"));
        old.withArray("stages").forEach(st -> ((com.fasterxml.jackson.databind.node.ObjectNode) st).remove("layer_groups"));
        old.withArray("stages").forEach(st -> ((com.fasterxml.jackson.databind.node.ObjectNode) st)
                .remove(List.of("train_mixers", "mixer_lr")));
        assertEquals(List.of(), ResolvedConfig.differences(ResolvedConfig.withLegacyDefaults(old), now.toJson()));
        RunConfig f16 = ConfigLoader.load(f, List.of("precision=f16"));
        assertEquals(List.of("precision"), ResolvedConfig.differences(ResolvedConfig.withLegacyDefaults(old),
                f16.toJson()));
    }

    private static String sha256(RunConfig c) throws Exception {
        byte[] json = new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsBytes(c.toJson());
        return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(json));
    }

    /**
     * The resolved JSON is hashed into the teacher cache's key and compared on resume: these hashes were computed
     * before stage settings became one record per type (StageSpec), and must never change by accident. They changed
     * on purpose once since: the resolved form gained {@code precision}, LoRA stages {@code recompute} (and {@code threads} may be {@code auto});
     * then attention-transfer stages {@code layer_groups}, and LoRA stages {@code train_mixers} and {@code mixer_lr};
     * then the quickstart gained four variants (window_only, mamba2, gated_deltanet, hybrid_auto), and the windowed
     * SSM students' window_factor_init its own default. Its teacher's cache key is unchanged, since it hashes the
     * pretraining stage's settings, not the variants.
     */
    @Test
    void theResolvedJsonStaysByteIdentical(@TempDir Path dir) throws Exception {
        RunConfig quickstart = ConfigLoader.load(Path.of("..", "configs", "quickstart.yaml"), List.of());
        assertEquals("bb89db253a61936fbc5d9e5c6484f040e731ac6fcbb3306b13e0468e62e94e66", sha256(quickstart));
        // The teacher cache key also hashes TeacherPretrainStage.FORMAT, the DJL and libtorch versions and the
        // thread count (it was teacher-22469ee2369b3bb5 when it hashed the settings alone).
        assertEquals(Path.of("runs/.teachers/teacher-06962b0899ee98bb"),
                molt.pipeline.train.TeacherPretrainStage.cacheDir(quickstart));
        // Every stage type, with non-default values where the serialised form depends on them (in YAML's order,
        // which the resolved form does not follow).
        Path all = write(dir, "all.yaml", """
                name: curriculum
                output_dir: /tmp/r
                checkpoint:
                  every_steps: 5
                teacher:
                  cache_dir: /tmp/c
                data:
                  source: /tmp/corpus.jsonl
                  seq_len: 32
                  val_fraction: 0.1
                stages:
                  - name: d
                    type: data_prepare
                  - name: pretrain
                    type: teacher_pretrain
                    hidden: 32
                    layers: 2
                    heads: 4
                    kv_heads: 2
                    tokens: 640
                    copy_fraction: 0.5
                    copy_scrambled: 0.25
                    copy_scramble_from: letters
                    repeat_every: 4
                    repeat_max_period: 6
                    val_batches: 1
                    repeat_sequences: 4
                    repeat_min_period: 2
                    val_every: 10
                    repeat_seq_len: 16
                    repeat_warmup_steps: 3
                    scheduler: plateau
                    plateau_factor: 0.3
                    plateau_patience: 5
                  - name: transfer
                    type: attention_transfer
                    tokens: 128
                    layer_groups: 2
                  - name: ft
                    type: lora_finetune
                    tokens: 128
                    kl_weight: 1
                    ce_weight: 0
                    train_mixers: true
                    mixer_lr: 0.002
                  - name: export
                    type: export
                    dtype: BF16
                  - name: evaluate
                    type: evaluate
                """);
        assertEquals("48bdeb3bd6229764a9d560c031c0cc13dfab761504f7bf99b069f5562fd2ed05",
                sha256(ConfigLoader.load(all, List.of())));
    }

    @Test
    void everyShippedConfigValidates(@TempDir Path dir) throws Exception {
        // SmolLM2-135M's depth (30 layers), tiny widths: the hybrid config names layer 15.
        // SmolLM2-135M's depth and positions: the shipped configs evaluate contexts up to 4096 tokens.
        Path teacher = molt.teacher.testing.TinyCheckpoints.builder().layers(30).vocab(258).maxPositions(8192)
                .write(dir.resolve("t30"));
        new molt.teacher.tokenizer.ByteTokenizer().save(teacher);
        Path configs = Path.of("..", "configs");
        List<Path> files;
        try (Stream<Path> s = Files.walk(configs)) {
            // configs/data/ holds data-section fragments, checked through the configs that extend them.
            files = s.filter(p -> p.toString().endsWith(".yaml") && !p.startsWith(configs.resolve("data"))).sorted()
                    .toList();
        }
        assertTrue(files.size() >= 6, files.toString());
        RunConfig base = ConfigLoader.load(configs.resolve("base/lolcats.yaml"), List.of("teacher.path=/x"));
        assertEquals("europarl-en", base.data().source(), "the data fragment reaches the base config");
        assertEquals(1024, base.data().seqLen());
        for (Path f : files) {
            boolean pretrains; // its own stages or the ones it extends make the teacher
            try {
                pretrains = ConfigLoader.load(f, List.of()).pretrainStage() != null;
            } catch (InputException e) {
                pretrains = false; // no pretraining stage: teacher.path is required
            }
            CliTestSupport.Run r = pretrains ? CliTestSupport.run("validate", f.toString())
                    : CliTestSupport.run("validate", f.toString(), "--set", "teacher.path=" + teacher);
            assertEquals(0, r.exit(), f + ": " + r.err());
            assertTrue(r.out().contains("# parameters: teacher"), r.out());
            assertTrue(r.out().contains("# memory estimate"), r.out());
        }
        CliTestSupport.Run bad = CliTestSupport.run("validate", configs.resolve("base/lolcats.yaml").toString(), "--set",
                "student.window=128");
        assertEquals(2, bad.exit());
        assertEquals(1, bad.err().strip().lines().count(), bad.err());
    }
}
