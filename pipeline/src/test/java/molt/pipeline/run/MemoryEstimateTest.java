package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.config.RunConfig;
import molt.teacher.LlamaConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * validate's memory estimate against the peaks `molt bench scale` measured (docs/BENCHMARKS.md, "Real-size
 * teachers"; each with the allocator mode molt picks for its size, NativeMemory.modeFor): within 25% for every
 * shape and stage measured. A change to what a step allocates must update the model
 * (and the measurements) together.
 */
class MemoryEstimateTest {
    private static final double GIB = 1L << 30;

    /** A measured peak: shape, precision, stage, GiB, and whether 16-bit weights multiplied in BF16 (AMX). */
    private record Measured(String shape, String precision, String stage, double gib, boolean bf16) {
    }

    private static final List<Measured> MEASURED = List.of(
            new Measured("smollm2-135m", "f16", "transfer", 1.63, false),
            new Measured("smollm2-135m", "f16", "lora", 2.53, false),
            new Measured("smollm2-135m", "f32", "transfer", 2.38, false),
            new Measured("smollm2-135m", "f32", "lora", 8.69, false),
            new Measured("llama-3.2-1b", "f16", "transfer", 4.31, false),
            new Measured("llama-3.2-1b", "f16", "lora", 4.22, false),
            new Measured("llama-3-8b", "f16", "transfer", 19.11, false),
            new Measured("llama-3-8b", "f16", "lora", 19.73, false),
            // an Intel Xeon with AMX, 2026-12-03: BF16 products, and for 1B the allocator's REUSE mode they allow
            new Measured("smollm2-135m", "f16", "transfer", 1.39, true),
            new Measured("smollm2-135m", "f16", "lora", 2.08, true),
            new Measured("llama-3.2-1b", "f16", "transfer", 4.32, true),
            new Measured("llama-3.2-1b", "f16", "lora", 5.53, true),
            new Measured("llama-3-8b", "f16", "transfer", 18.15, true),
            new Measured("llama-3-8b", "f16", "lora", 19.52, true));

    private static LlamaConfig shape(String name) throws Exception {
        java.lang.reflect.Field f = Class.forName("molt.pipeline.cli.ScaleBench").getDeclaredField("SHAPES");
        f.setAccessible(true);
        String json = ((java.util.Map<?, ?>) f.get(null)).get(name).toString();
        return LlamaConfig.fromJson((ObjectNode) new ObjectMapper().readTree(json), Path.of(name));
    }

    @Test
    void theEstimateIsWithinAQuarterOfEveryMeasuredPeak(@TempDir Path dir) throws Exception {
        for (Measured m : MEASURED) {
            Path yaml = Files.writeString(dir.resolve(m.shape() + ".yaml"), """
                    teacher: {path: /models/x}
                    precision: %s
                    data: {seq_len: 1024, batch_size: 1}
                    stages:
                      - {name: transfer, type: attention_transfer, tokens: 3072}
                      - {name: finetune, type: lora_finetune, tokens: 3072, grad_accum: 1}
                    """.formatted(m.precision()));
            RunConfig cfg = ConfigLoader.load(yaml, List.of());
            MemoryEstimate e = MemoryEstimate.of(cfg, shape(m.shape()), m.bf16());
            double est = (m.stage().equals("transfer") ? e.transferBytes() : e.loraBytes()) / GIB;
            double ratio = est / m.gib();
            assertTrue(ratio > 0.75 && ratio < 1.25, m + ": estimate " + est + " GiB");
        }
    }

    /** Layer groups hold the taps of one group at a time: 8 of the 8B shape's 32 layers with 4 groups. */
    @Test
    void layerGroupsHoldOnlyOneGroupsTaps(@TempDir Path dir) throws Exception {
        LlamaConfig c = shape("llama-3-8b");
        long[] bytes = new long[2];
        int[] groups = {0, 4};
        for (int i = 0; i < 2; i++) {
            Path yaml = Files.writeString(dir.resolve("g" + groups[i] + ".yaml"), """
                    teacher: {path: /models/x}
                    precision: f16
                    data: {seq_len: 1024, batch_size: 1}
                    stages:
                      - {name: transfer, type: attention_transfer, tokens: 3072, layer_groups: %d}
                    """.formatted(groups[i]));
            bytes[i] = MemoryEstimate.of(ConfigLoader.load(yaml, List.of()), c).transferBytes();
        }
        // hidden, q, attention output [T, 4096] and k, v [T, 1024], F32, per tapped layer
        long perLayer = 4L * 1024 * (4096 + 2 * 4096 + 2 * 1024);
        org.junit.jupiter.api.Assertions.assertEquals((32 - 8) * perLayer, bytes[0] - bytes[1]);
    }
}
