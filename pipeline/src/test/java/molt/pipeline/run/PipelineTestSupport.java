package molt.pipeline.run;

import java.nio.file.Files;
import java.nio.file.Path;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;

/** A tiny teacher and a run config for pipeline tests. */
public final class PipelineTestSupport {
    private PipelineTestSupport() {
    }

    public static Path teacher(Path dir) throws Exception {
        Path t = TinyCheckpoints.builder().layers(2).hidden(32).heads(4, 2).vocab(ByteTokenizer.VOCAB)
                .write(dir.resolve("teacher"));
        new ByteTokenizer().save(t);
        return t;
    }

    public static Path corpus(Path dir) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 120; i++) {
            sb.append("{\"text\": \"The committee discussed item ").append(i)
                    .append(" of the agenda and agreed to vote on it tomorrow.\"}\n");
        }
        Path f = dir.resolve("corpus.jsonl");
        Files.writeString(f, sb);
        return f;
    }

    /**
     * The YAML sections every tiny test run shares: {@code teacher} (its path) and {@code data} (32-token sequences
     * of {@code source}, a tenth held out, 16 rows per shard), at the top level.
     */
    public static String sources(Object teacher, Object source) {
        return """
                teacher:
                  path: %s
                data:
                  source: %s
                  seq_len: 32
                  val_fraction: 0.1
                  rows_per_shard: 16
                """.formatted(teacher, source);
    }

    /** The tiny runs' student: hedgehog_window, feature dim 4, window 8, chunk 16. */
    public static final String STUDENT = """
            student:
              mixer: hedgehog_window
              feature_dim: 4
              window: 8
              chunk_size: 16
            """;

    /** The tiny runs' LoRA: rank 2, alpha 4. */
    public static final String LORA = """
            lora:
              rank: 2
              alpha: 4
            """;

    public static Path config(Path dir, Path teacher, Path corpus, String extra) throws Exception {
        String yaml = """
                name: tiny
                output_dir: %s
                seed: 3
                checkpoint:
                  every_steps: 2
                  keep_last: 2
                """.formatted(dir.resolve("run")) + sources(teacher, corpus) + STUDENT + LORA + """
                stages:
                  - name: transfer
                    type: attention_transfer
                    tokens: 256
                    val_every: 3
                    val_batches: 2
                  - name: finetune
                    type: lora_finetune
                    tokens: 256
                    grad_accum: 2
                    kl_weight: 0.5
                    val_every: 2
                    val_batches: 2
                  - name: export
                    type: export
                """ + extra;
        Path f = dir.resolve("tiny.yaml");
        Files.writeString(f, yaml);
        return f;
    }

    /**
     * A config whose first stage pretrains a tiny teacher (32 wide, 2 layers, 640 tokens of 32-token sequences from
     * {@link #corpus}) into {@code dir/cache}, writing the run to {@code dir/<runName>}: {@code top} adds top-level
     * sections, {@code pretrain} more keys of the pretraining stage (indented as its keys), {@code after} more stages.
     */
    public static Path pretrainConfig(Path dir, String runName, String top, String pretrain, String after)
            throws Exception {
        String yaml = """
                name: %s
                output_dir: %s
                teacher:
                  cache_dir: %s
                data:
                  source: %s
                  seq_len: 32
                  val_fraction: 0.1
                %s
                stages:
                  - name: pretrain
                    type: teacher_pretrain
                    hidden: 32
                    layers: 2
                    heads: 4
                    tokens: 640
                %s
                %s
                """.formatted(runName, dir.resolve(runName), dir.resolve("cache"), corpus(dir), top, pretrain, after);
        Path f = dir.resolve(runName + ".yaml");
        Files.writeString(f, yaml);
        return f;
    }
}
