package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import molt.teacher.LlamaConfig;
import molt.teacher.Precision;
import molt.teacher.io.Checkpoints;
import molt.teacher.io.DType;
import molt.teacher.io.WeightSource;
import molt.teacher.model.LlamaModel;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/** {@code molt bench scale}: its checkpoints and its report, on tiny shapes. */
class ScaleBenchTest {

    /** A 2-layer model with molt's byte tokenizer, short enough for 32-token steps. */
    private static Path tinyModel(Path dir) throws java.io.IOException {
        Path model = TinyCheckpoints.builder().layers(2).vocab(ByteTokenizer.VOCAB).maxPositions(64)
                .write(dir.resolve("m"));
        new ByteTokenizer().save(model);
        return model;
    }

    @Test
    void writesShardedBf16CheckpointsInTheHuggingFaceLayout(@TempDir Path dir) throws Exception {
        LlamaConfig c = LlamaConfig.read(TinyCheckpoints.builder().layers(3).vocab(300).write(dir.resolve("spec")));
        Path out = dir.resolve("random");
        ScaleBench.write(c, out, 20_000); // small shards: several files and an index
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors.index.json")));
        assertTrue(Checkpoints.weightFiles(out).size() > 2, Checkpoints.weightFiles(out).toString());
        try (WeightSource w = Checkpoints.open(out)) {
            assertEquals(DType.BF16, w.info("model.layers.2.mlp.down_proj.weight").dtype());
            float[] v = w.readFloats("model.layers.0.self_attn.q_proj.weight");
            double sum = 0;
            double sq = 0;
            for (float x : v) {
                sum += x;
                sq += x * x;
            }
            double sd = Math.sqrt(sq / v.length - (sum / v.length) * (sum / v.length));
            assertEquals(0.02, sd, 0.003, "matrices are drawn with standard deviation 0.02");
            assertEquals(1f, w.readFloats("model.norm.weight")[0]);
        }
        LlamaModel.load(out, Device.cpu(), Precision.F16).close(); // every name and shape as a Llama expects
        assertTrue(Files.isRegularFile(out.resolve("tokenizer.json")));
    }

    @Test
    void reportsEveryStageBesideTheGemmRate(@TempDir Path dir) throws Exception {
        Path model = tinyModel(dir);
        CliTestSupport.Run r = CliTestSupport.run("bench", "scale", "--model", model.toString(), "--seq-len", "32",
                "--steps", "2", "--warmup", "1", "--precision", "f16");
        assertEquals(0, r.exit(), r.err());
        String out = r.out();
        for (String s : List.of("F32 GEMM", "FLOPs per token counted", "f16 frozen weights", "projected:")) {
            assertTrue(out.contains(s), s + " missing in:\n" + out);
        }
        for (String stage : List.of("transfer", "lora")) {
            String row = out.lines().filter(l -> l.startsWith(stage + " ")).findFirst().orElseThrow();
            String[] f = row.trim().split("\\s+");
            assertTrue(Double.parseDouble(f[1]) > 0, row); // tokens/s
            assertTrue(f[3].endsWith("%"), row);
            assertTrue(Double.parseDouble(f[5]) > 0 && Double.parseDouble(f[7]) > 0, row); // peak RSS, estimate
            if (System.getProperty("os.name").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
                assertTrue(Long.parseLong(f[9].replace(",", "")) > 0, row); // page faults per step: arrays were made
            }
        }
        assertTrue(out.contains("allocator: "), out);
        // f16 weights multiply in BF16 where the CPU has AMX, and then the BF16 rate is printed beside the F32 one
        assertEquals(molt.teacher.nd.Bf16Products.fast(), out.contains("BF16 GEMM"), out);
        assertEquals(2, CliTestSupport.run("bench", "scale", "--shape", "gpt-5").exit());
        CliTestSupport.Run mixer = CliTestSupport.run("bench", "scale", "--shape", "smollm2-135m", "--mixer", "mamba3");
        assertEquals(2, mixer.exit(), mixer.err());
        assertTrue(mixer.err().contains("--mixer: expected one of [") && mixer.err().contains("softmax]")
                && mixer.err().contains("found 'mamba3'"), mixer.err());
    }

    @ParameterizedTest
    @ValueSource(strings = {"window_only", "softmax"}) // softmax: the teacher itself with LoRA, the quickstart's control
    void aMixerWithoutTransferParametersTimesLoraAlone(String mixer, @TempDir Path dir) throws Exception {
        Path model = tinyModel(dir);
        CliTestSupport.Run r = CliTestSupport.run("bench", "scale", "--model", model.toString(), "--seq-len", "32",
                "--steps", "1", "--warmup", "0", "--mixer", mixer);
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("transfer   none: a " + mixer + " student has no parameters"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("lora ")), r.out());
        assertTrue(r.out().contains("projected: ") && r.out().contains("h for 20M tokens of LoRA"), r.out());
        assertTrue(ScaleBench.transfers("hedgehog_window"));
        assertFalse(ScaleBench.transfers("window_only"));
        assertFalse(ScaleBench.transfers("softmax"));
    }

    @Test
    void profilesOneMoreStepPerStageOutsideTheRates(@TempDir Path dir) throws Exception {
        Path model = tinyModel(dir);
        Path traces = dir.resolve("traces");
        CliTestSupport.Run r = CliTestSupport.run("bench", "scale", "--model", model.toString(), "--seq-len", "32",
                "--steps", "1", "--warmup", "1", "--precision", "f32", "--profile", traces.toString());
        assertEquals(0, r.exit(), r.err());
        for (String stage : List.of("transfer", "finetune")) {
            Path trace = traces.resolve(stage + "-step-3.trace.json"); // after one warm-up and one timed step
            assertTrue(Files.isRegularFile(trace), r.out());
            TraceSummary t = TraceSummary.read(trace);
            assertTrue(t.ops().stream().anyMatch(o -> o.name().equals("aten::mm") && o.calls() > 0), t.ops().toString());
            assertTrue(r.out().contains(stage + " step 3, profiled"), r.out());
        }
        assertTrue(r.out().contains("in libtorch's ops, all"), r.out());
        assertFalse(Files.exists(traces.resolve("transfer-step-2.trace.json")), "only the extra step is profiled");
    }
}
