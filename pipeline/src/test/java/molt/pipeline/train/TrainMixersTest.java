package molt.pipeline.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import molt.pipeline.cli.CliTestSupport;
import molt.pipeline.run.PipelineTestSupport;
import molt.teacher.io.WeightsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * lora_finetune's train_mixers: the mixers train beside the adapters, each group at its own rate. After one AdamW
 * step without weight decay every parameter has moved by exactly its learning rate (m^ / sqrt(v^) = g / |g| on the
 * first step), which pins the rate each group trained at.
 */
class TrainMixersTest {
    private static Map<String, float[]> run(Path dir, String name, String lora) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        String yaml = """
                name: %s
                output_dir: %s
                seed: 4
                """.formatted(name, dir.resolve(name))
                + PipelineTestSupport.sources(teacher, PipelineTestSupport.corpus(dir))
                + PipelineTestSupport.STUDENT + PipelineTestSupport.LORA + """
                stages:
                  - name: transfer
                    type: attention_transfer
                    tokens: 64
                    val_batches: 1
                  - name: finetune
                    type: lora_finetune
                    tokens: 32
                    grad_accum: 1
                    lr: 0.0007
                    val_batches: 1
                    val_every: 1
                %s
                """.formatted(lora);
        Path cfg = Files.writeString(dir.resolve(name + ".yaml"), yaml);
        CliTestSupport.Run r = CliTestSupport.run("run", cfg.toString());
        assertEquals(0, r.exit(), r.err());
        return WeightsFile.read(dir.resolve(name).resolve("stages/finetune/final.safetensors"));
    }

    /**
     * Every element of every parameter whose name contains {@code part} moved by 0 or by at most {@code lr} (less
     * only where AdamW's epsilon is not negligible beside a tiny gradient); most moved by exactly lr.
     */
    private static void assertMovedBy(Map<String, float[]> before, Map<String, float[]> after, String part, double lr) {
        int moved = 0;
        int exact = 0;
        int total = 0;
        for (Map.Entry<String, float[]> e : after.entrySet()) {
            if (!e.getKey().contains(part)) {
                continue;
            }
            float[] a = e.getValue();
            float[] b = before.get(e.getKey());
            for (int i = 0; i < a.length; i++) {
                double d = Math.abs(a[i] - (b == null ? 0 : b[i]));
                total++;
                if (d > lr * 1e-3) {
                    moved++;
                    assertTrue(d > 0.5 * lr && d < lr * (1 + 1e-4), e.getKey() + "[" + i + "] moved " + d);
                    exact += Math.abs(d - lr) < lr * 1e-3 ? 1 : 0;
                }
            }
        }
        assertTrue(total > 0 && moved > total / 2, part + ": " + moved + " of " + total + " moved");
        assertTrue(exact > 0.8 * moved, part + ": " + exact + " of " + moved + " moved by lr");
    }

    @Test
    void mixersTrainAtMixerLrBesideTheAdaptersAtLr(@TempDir Path dir) throws Exception {
        Map<String, float[]> trained = run(dir, "both", "    train_mixers: true\n    mixer_lr: 0.003\n");
        Map<String, float[]> transferred = WeightsFile.read(dir.resolve("both/stages/transfer/final.safetensors"));
        assertMovedBy(transferred, trained, ".mixer.", 0.003);
        assertMovedBy(Map.of(), trained, "lora_B", 0.0007); // B starts at zero
    }

    @Test
    void withoutTrainMixersTheMixersStayAsTransferred(@TempDir Path dir) throws Exception {
        Map<String, float[]> trained = run(dir, "lora", "");
        Map<String, float[]> transferred = WeightsFile.read(dir.resolve("lora/stages/transfer/final.safetensors"));
        for (Map.Entry<String, float[]> e : transferred.entrySet()) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(e.getValue(), trained.get(e.getKey()), e.getKey());
        }
        assertMovedBy(Map.of(), trained, "lora_B", 0.0007);
    }

    @Test
    void mixerLrWithoutTrainMixersIsRefused(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path cfg = PipelineTestSupport.config(dir, teacher, PipelineTestSupport.corpus(dir), "");
        Files.writeString(cfg, Files.readString(cfg).replace("    kl_weight: 0.5\n", "    kl_weight: 0.5\n    mixer_lr: 0.01\n"));
        CliTestSupport.Run r = CliTestSupport.run("validate", cfg.toString());
        assertEquals(2, r.exit(), r.out());
        assertTrue(r.err().contains("mixer_lr") && r.err().contains("train_mixers: true"), r.err());
    }
}
