package molt.student.mixer;

import ai.djl.ndarray.NDManager;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Mixers by name, so a plan can name any registered family and new families plug in without touching the
 * student model. {@link #SOFTMAX} is reserved for layers that keep the teacher's attention.
 */
public final class MixerRegistry {
    /** Plan entry for a layer that keeps softmax attention (hybrid students). */
    public static final String SOFTMAX = "softmax";

    /**
     * Builds a mixer for a layer with {@code heads} query heads of dim {@code headDim} in a model of width
     * {@code modelDim}; parameters in {@code m}.
     */
    @FunctionalInterface
    public interface Factory {
        Mixer create(NDManager m, int heads, int headDim, int modelDim, MixerSettings settings);
    }

    private static final Map<String, Factory> FACTORIES = new LinkedHashMap<>();

    static {
        register(HedgehogMixer.NAME, (m, h, d, md, s) -> new HedgehogMixer(m, h, d, s));
        register(HedgehogWindowMixer.NAME, (m, h, d, md, s) -> new HedgehogWindowMixer(m, h, d, s));
        register(RetentionMixer.NAME, (m, h, d, md, s) -> new RetentionMixer(m, h, d, s));
        register(GlaMixer.NAME, (m, h, d, md, s) -> GlaMixer.learned(m, h, d, s));
        register(GlaMixer.LIGER, (m, h, d, md, s) -> GlaMixer.liger(m, h, d, s));
        register(LigerWindowMixer.NAME, (m, h, d, md, s) -> new LigerWindowMixer(m, h, d, s));
        register(Mamba2Mixer.NAME, Mamba2Mixer::new);
        register(GatedDeltaNetMixer.NAME, GatedDeltaNetMixer::new);
    }

    private MixerRegistry() {
    }

    public static synchronized void register(String name, Factory factory) {
        if (name.equals(SOFTMAX) || FACTORIES.containsKey(name)) {
            throw new IllegalArgumentException("mixer name already taken: " + name);
        }
        FACTORIES.put(name, factory);
    }

    /** Registered mixer names (not including {@link #SOFTMAX}). */
    public static synchronized Set<String> names() {
        return Collections.unmodifiableSet(new java.util.LinkedHashSet<>(FACTORIES.keySet()));
    }

    /** True for a registered mixer or {@link #SOFTMAX}. */
    public static synchronized boolean known(String name) {
        return name.equals(SOFTMAX) || FACTORIES.containsKey(name);
    }

    public static synchronized Mixer create(String name, NDManager m, int heads, int headDim, int modelDim,
                                            MixerSettings s) {
        Factory f = FACTORIES.get(name);
        if (f == null) {
            throw new IllegalArgumentException("unknown mixer '" + name + "' (known: " + names() + ", " + SOFTMAX + ")");
        }
        return f.create(m, heads, headDim, modelDim, s);
    }
}
