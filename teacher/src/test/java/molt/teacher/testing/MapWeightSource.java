package molt.teacher.testing;

import java.nio.file.Path;
import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.io.DType;
import molt.teacher.io.TensorInfo;
import molt.teacher.io.WeightSource;

/** In-memory F32 weights for tests. */
public final class MapWeightSource implements WeightSource {
    private final Map<String, float[]> values;
    private final Map<String, long[]> shapes;

    public MapWeightSource(Map<String, float[]> values, Map<String, long[]> shapes) {
        this.values = new TreeMap<>(values);
        this.shapes = shapes;
    }

    /** Random weights of a config's expected shapes (see {@link TinyCheckpoints#weights()}). */
    public static MapWeightSource of(TinyCheckpoints builder) {
        LlamaConfig c = LlamaConfig.fromJson(builder.configJson(), Path.of("config.json"));
        return new MapWeightSource(builder.weights(), LlamaWeights.expected(c));
    }

    @Override
    public Path origin() {
        return Path.of("memory");
    }

    @Override
    public Set<String> names() {
        return Collections.unmodifiableSet(values.keySet());
    }

    @Override
    public TensorInfo info(String name) {
        if (!values.containsKey(name)) {
            throw new InputException(origin(), "no tensor named " + name);
        }
        return new TensorInfo(name, DType.F32, shapes.get(name));
    }

    @Override
    public float[] readFloats(String name) {
        info(name);
        return values.get(name);
    }
}
