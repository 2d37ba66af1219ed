package molt.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import molt.pipeline.run.PipelineTestSupport;

/**
 * The run the Spark tests distribute: {@link PipelineTestSupport}'s tiny teacher and corpus, the
 * teacher's top-k targets (several shards), attention transfer in two layer groups, a variant beside the run's own
 * student, LoRA on the top-k cache and export. Its output directory is {@code DIR/run}.
 */
final class SparkTestRuns {
    private SparkTestRuns() {
    }

    /** Writes the teacher, corpus and config under {@code dir}; returns the config file. */
    static Path config(Path dir) throws Exception {
        return config(dir, "");
    }

    /**
     * Writes the teacher and corpus under {@code dir}, and a config that names them with {@code scheme} before their
     * absolute paths ("" for plain paths); returns the config file.
     */
    static Path config(Path dir, String scheme) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path source = PipelineTestSupport.corpus(dir);
        String yaml = """
                name: spark-tiny
                output_dir: %s
                seed: 3
                threads: 1
                checkpoint:
                  every_steps: 2
                  keep_last: 2
                """.formatted(dir.resolve("run"))
                + PipelineTestSupport.sources(scheme + teacher.toAbsolutePath(), scheme + source.toAbsolutePath())
                + PipelineTestSupport.STUDENT + PipelineTestSupport.LORA + """
                variants:
                  wide:
                    student: {mixer: hedgehog, feature_dim: 8}
                stages:
                  - name: data
                    type: data_prepare
                    top_k: 4
                  - name: transfer
                    type: attention_transfer
                    tokens: 256
                    layer_groups: 2
                    val_every: 3
                    val_batches: 2
                  - name: finetune
                    type: lora_finetune
                    tokens: 192
                    kl_weight: 0.5
                    kl_source: cache
                    top_k: 4
                    val_every: 2
                    val_batches: 2
                  - name: export
                    type: export
                """;
        return Files.writeString(dir.resolve("spark-tiny.yaml"), yaml);
    }

    /** Every weights and top-k file of a run (checkpoints aside), by path relative to the run. */
    static Map<String, byte[]> outputs(Path run) throws Exception {
        Map<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> files = Files.walk(run)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                String rel = run.relativize(f).toString();
                if (!rel.contains("checkpoints/") && (rel.endsWith(".safetensors") || rel.endsWith(".parquet")
                        || rel.endsWith(".sha256"))) {
                    out.put(rel, Files.readAllBytes(f));
                }
            }
        }
        return out;
    }

    static void assertSameBytes(Map<String, byte[]> want, Map<String, byte[]> got) {
        assertEquals(want.keySet(), got.keySet(), "the same files");
        for (var e : want.entrySet()) {
            assertArrayEquals(e.getValue(), got.get(e.getKey()), e.getKey() + " differs");
        }
    }
}
