package molt.teacher.io;

import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;

/**
 * Random weights for a Llama config, generated on demand and deterministic from (seed, tensor name): N(0, 0.02)
 * for matrices, 1 for norm weights, 0 for biases. Used to start a teacher from scratch and by benchmarks, so large
 * models need no checkpoint on disk.
 */
public final class RandomWeights implements WeightSource {
    private final Map<String, long[]> shapes;
    private final long seed;

    public RandomWeights(LlamaConfig c, long seed) {
        this.shapes = LlamaWeights.expected(c);
        this.seed = seed;
    }

    @Override
    public Path origin() {
        return Path.of("random-weights");
    }

    @Override
    public Set<String> names() {
        return new TreeSet<>(shapes.keySet());
    }

    @Override
    public TensorInfo info(String name) {
        return new TensorInfo(name, DType.F32, shapes.get(name));
    }

    @Override
    public float[] readFloats(String name) {
        float[] v = new float[Math.toIntExact(info(name).numel())];
        if (name.endsWith("norm.weight")) {
            java.util.Arrays.fill(v, 1f);
            return v;
        }
        if (name.endsWith(".bias")) {
            return v;
        }
        Random r = new Random(seed * 31 + name.hashCode());
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (0.02 * r.nextGaussian());
        }
        return v;
    }
}
