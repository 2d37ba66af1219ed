package molt.student;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import molt.student.mixer.MixerRegistry;
import molt.teacher.InputException;

/**
 * Which mixer replaces attention in each layer: a registered mixer name, or {@code softmax} to keep the teacher's
 * attention in that layer (a hybrid student).
 */
public record StudentPlan(List<String> layers) {

    public StudentPlan {
        layers = List.copyOf(layers);
        for (int i = 0; i < layers.size(); i++) {
            if (!MixerRegistry.known(layers.get(i))) {
                throw new InputException("plan: layer " + i + " names unknown mixer '" + layers.get(i) + "' (known: "
                        + MixerRegistry.names() + ", " + MixerRegistry.SOFTMAX + ")");
            }
        }
    }

    /**
     * {@code mixer} in every layer except {@code softmaxLayers}, with per-layer {@code overrides}; every named layer
     * must exist.
     */
    public static StudentPlan of(int numLayers, String mixer, Set<Integer> softmaxLayers, Map<Integer, String> overrides) {
        List<String> l = new ArrayList<>(Collections.nCopies(numLayers, mixer));
        for (int i : softmaxLayers) {
            check(i, numLayers, "softmax_layers");
            l.set(i, MixerRegistry.SOFTMAX);
        }
        for (Map.Entry<Integer, String> e : overrides.entrySet()) {
            check(e.getKey(), numLayers, "layers");
            l.set(e.getKey(), e.getValue());
        }
        return new StudentPlan(l);
    }

    private static void check(int layer, int numLayers, String key) {
        if (layer < 0 || layer >= numLayers) {
            throw new InputException("plan: " + key + " names layer " + layer + ", but the model has layers 0.."
                    + (numLayers - 1));
        }
    }

    public int size() {
        return layers.size();
    }

    public String mixer(int layer) {
        return layers.get(layer);
    }

    /** The layers whose attention a mixer replaces, in order. */
    public int[] mixerLayers() {
        return java.util.stream.IntStream.range(0, size()).filter(i -> !keepsSoftmax(i)).toArray();
    }

    public boolean keepsSoftmax(int layer) {
        return layers.get(layer).equals(MixerRegistry.SOFTMAX);
    }
}
