package molt.teacher.model;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.testing.MapWeightSource;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** What a model refuses when it loads or runs: non-finite weights, a conflicting tied head, impossible sizes. */
class LoadChecksTest {

    private static LlamaConfig config(TinyCheckpoints spec) {
        return LlamaConfig.fromJson(spec.configJson(), Path.of("config.json"));
    }

    @ParameterizedTest(name = "{0}[{1}] = {2}")
    @CsvSource({"model.embed_tokens.weight, 0, NaN", "model.layers.1.self_attn.k_proj.weight, 17, Infinity",
        "model.norm.weight, 3, -Infinity", "model.layers.0.mlp.down_proj.weight, 100, NaN"})
    void nonFiniteWeightsAreRefusedNamingTheTensor(String tensor, int index, float value) {
        TinyCheckpoints spec = TinyCheckpoints.builder();
        Map<String, float[]> w = new HashMap<>(spec.weights());
        w.get(tensor)[index] = value;
        LlamaConfig c = config(spec);
        InputException e = assertThrows(InputException.class, () -> LlamaModel.fromWeights(c,
                new MapWeightSource(w, LlamaWeights.expected(c)), Device.cpu()).close());
        assertTrue(e.getMessage().contains(tensor + ": element " + index), e.getMessage());
    }

    @Test
    void aTiedHeadMustBeACopyOfTheEmbedding() {
        TinyCheckpoints spec = TinyCheckpoints.builder().tie(true);
        LlamaConfig c = config(spec);
        Map<String, float[]> w = new HashMap<>(spec.weights());
        Map<String, long[]> shapes = new HashMap<>(LlamaWeights.expected(c));
        shapes.put("lm_head.weight", new long[] {c.vocabSize(), c.hiddenSize()});
        w.put("lm_head.weight", w.get("model.embed_tokens.weight").clone());
        assertDoesNotThrow(() -> LlamaModel.fromWeights(c, new MapWeightSource(w, shapes), Device.cpu()).close());
        for (int index : new int[] {0, 41, c.vocabSize() * c.hiddenSize() - 1}) {
            float[] head = w.get("model.embed_tokens.weight").clone();
            head[index] += 0.5f;
            w.put("lm_head.weight", head);
            InputException e = assertThrows(InputException.class,
                    () -> LlamaModel.fromWeights(c, new MapWeightSource(w, shapes), Device.cpu()).close());
            assertTrue(e.getMessage().contains("lm_head.weight differs from model.embed_tokens.weight (first at element "
                    + index), e.getMessage());
        }
    }

    @ParameterizedTest(name = "num_hidden_layers {0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {3, 1000, 1_000_000_000})
    void moreLayersThanTheWeightsHoldFailsAtOnce(int layers) {
        TinyCheckpoints spec = TinyCheckpoints.builder();
        ObjectNode json = spec.configJson().put("num_hidden_layers", layers);
        LlamaConfig c = LlamaConfig.fromJson(json, Path.of("config.json"));
        InputException e = assertThrows(InputException.class,
                () -> LlamaWeights.validate(c, MapWeightSource.of(spec)));
        assertTrue(e.getMessage().contains("num_hidden_layers " + layers + " but the weights hold 2 layer(s)"),
                e.getMessage());
    }

    @Test
    void parameterCountIsTheSumOfTheExpectedTensors() {
        TinyCheckpoints[] specs = {TinyCheckpoints.builder(), TinyCheckpoints.builder().tie(true),
            TinyCheckpoints.builder().attentionBias(true).mlpBias(true).heads(4, 2),
            TinyCheckpoints.builder().modelType("qwen2").headDim(6)};
        for (TinyCheckpoints spec : specs) {
            LlamaConfig c = config(spec);
            long sum = LlamaWeights.expected(c).values().stream()
                    .mapToLong(s -> java.util.Arrays.stream(s).reduce(1, (a, b) -> a * b)).sum();
            assertEquals(sum, LlamaWeights.parameterCount(c), c.toString());
        }
    }

    @Test
    void positionsBeyondTheModelsRangeAreInputErrors() {
        TinyCheckpoints spec = TinyCheckpoints.builder();
        ObjectNode json = spec.configJson().put("max_position_embeddings", 16);
        LlamaConfig c = LlamaConfig.fromJson(json, Path.of("config.json"));
        try (LlamaModel m = LlamaModel.fromWeights(c, MapWeightSource.of(spec), Device.cpu());
             NDManager out = NDManager.newBaseManager(Device.cpu());
             DecoderState state = m.newState()) {
            assertDoesNotThrow(() -> m.logits(out, new long[][] {new long[16]}).close());
            InputException e = assertThrows(InputException.class, () -> m.logits(out, new long[][] {new long[17]}));
            assertTrue(e.getMessage().contains("positions 0..16 exceed the model's max_position_embeddings 16"),
                    e.getMessage());
            m.decode(out, state, new long[][] {new long[15]}).close();
            m.decode(out, state, new long[][] {{1}}).close();
            assertThrows(InputException.class, () -> m.decode(out, state, new long[][] {{1}}));
            assertEquals(0, out.getManagedArrays().size());
        }
    }
}
