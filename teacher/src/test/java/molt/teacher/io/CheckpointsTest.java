package molt.teacher.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointsTest {

    @Test
    void shardedAndSingleFileHoldTheSameTensors(@TempDir Path dir) {
        Path one = TinyCheckpoints.builder().write(dir.resolve("one"));
        Path three = TinyCheckpoints.builder().shards(3).write(dir.resolve("three"));
        try (WeightSource a = Checkpoints.open(one); WeightSource b = Checkpoints.open(three)) {
            assertTrue(a instanceof SafetensorsFile);
            assertTrue(b instanceof ShardedWeights);
            assertEquals(a.names(), b.names());
            for (String n : a.names()) {
                assertEquals(a.info(n).shapeString(), b.info(n).shapeString());
                org.junit.jupiter.api.Assertions.assertArrayEquals(a.readFloats(n), b.readFloats(n), n);
            }
            LlamaWeights.validate(LlamaConfig.read(three), b);
        }
        assertEquals(4, Checkpoints.weightFiles(three).size());
        assertEquals(Checkpoints.weightsSha256(one), Checkpoints.weightsSha256(one));
        assertNotEquals(Checkpoints.weightsSha256(one), Checkpoints.weightsSha256(three));
    }

    @Test
    void indexProblemsAreReported(@TempDir Path dir) throws Exception {
        Path m = TinyCheckpoints.builder().shards(2).write(dir.resolve("m"));
        Files.delete(m.resolve("model-00002-of-00002.safetensors"));
        InputException e = assertThrows(InputException.class, () -> Checkpoints.open(m));
        assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors") && e.getMessage().contains("missing"),
                e.getMessage());

        Path n = TinyCheckpoints.builder().shards(2).write(dir.resolve("n"));
        String index = Files.readString(n.resolve(Checkpoints.INDEX));
        Files.writeString(n.resolve(Checkpoints.INDEX), index.replace("\"model.norm.weight\"", "\"model.nrm.weight\""));
        e = assertThrows(InputException.class, () -> Checkpoints.open(n));
        assertTrue(e.getMessage().contains("model.nrm.weight"), e.getMessage());

        Files.writeString(n.resolve(Checkpoints.INDEX), "{\"weight_map\": 3}");
        e = assertThrows(InputException.class, () -> Checkpoints.open(n));
        assertTrue(e.getMessage().contains("weight_map"), e.getMessage());

        Path empty = Files.createDirectories(dir.resolve("empty"));
        e = assertThrows(InputException.class, () -> Checkpoints.open(empty));
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
    }

    @Test
    void missingUnexpectedAndMisshapedTensorsAreListedTogether(@TempDir Path dir) throws Exception {
        TinyCheckpoints spec = TinyCheckpoints.builder();
        Path m = spec.write(dir.resolve("m"));
        LlamaConfig c = LlamaConfig.read(m);
        Map<String, long[]> shapes = LlamaWeights.expected(c);
        List<SafetensorsWriter.Tensor> tensors = new ArrayList<>();
        for (Map.Entry<String, float[]> e : spec.weights().entrySet()) {
            String name = e.getKey();
            if (name.equals("model.layers.1.mlp.up_proj.weight")) {
                continue; // missing
            }
            long[] shape = shapes.get(name);
            float[] values = e.getValue();
            if (name.equals("model.layers.0.self_attn.k_proj.weight")) {
                shape = new long[] {shape[1], shape[0]}; // mis-shaped
            }
            tensors.add(SafetensorsWriter.Tensor.ofFloats(name, DType.F32, shape, values));
        }
        tensors.add(SafetensorsWriter.Tensor.ofFloats("model.extra.weight", DType.F32, new long[] {2}, new float[2]));
        tensors.add(SafetensorsWriter.Tensor.ofFloats("model.layers.0.self_attn.rotary_emb.inv_freq", DType.F32,
                new long[] {2}, new float[2]));
        SafetensorsWriter.write(m.resolve("model.safetensors"), tensors, Map.of());
        try (WeightSource w = Checkpoints.open(m)) {
            InputException e = assertThrows(InputException.class, () -> LlamaWeights.validate(c, w));
            String msg = e.getMessage();
            assertTrue(msg.contains("3 tensor problem(s)"), msg);
            assertTrue(msg.contains("model.layers.1.mlp.up_proj.weight: missing (expected [48, 32])"), msg);
            assertTrue(msg.contains("model.layers.0.self_attn.k_proj.weight: expected [16, 32], found [32, 16]"), msg);
            assertTrue(msg.contains("model.extra.weight: unexpected"), msg);
            assertTrue(msg.startsWith(m.resolve("model.safetensors").toString()), msg);
        }
    }
}
