package molt.student.mixer;

import ai.djl.ndarray.NDManager;
import molt.teacher.model.AttentionCore;
import molt.teacher.model.SoftmaxAttention;
import ai.djl.ndarray.types.Shape;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * Mixers by name, so a plan can name any registered family and new families plug in without touching the
 * student model: a new mixer is one class and one {@link #register} call here. Each entry also reports its
 * parameters' names and shapes without building the mixer (for parameter counts and memory estimates).
 * {@link #SOFTMAX} is reserved for layers that keep the teacher's attention (no new parameters).
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

    /**
     * The names and shapes of the parameters that {@link Factory#create} makes for the same arguments, in the same
     * order (the mixer's {@link Mixer#parameters()} order); allocates nothing.
     */
    @FunctionalInterface
    public interface Shapes {
        Map<String, Shape> of(int heads, int headDim, int modelDim, MixerSettings settings);
    }

    private record Entry(Factory factory, Shapes shapes, double windowFactorInit) {
    }

    private static final Map<String, Entry> ENTRIES = new LinkedHashMap<>();

    static {
        register(HedgehogMixer.NAME, (m, h, d, md, s) -> new HedgehogMixer(m, h, d, s), HedgehogMixer::shapes);
        register(HedgehogWindowMixer.NAME, (m, h, d, md, s) -> new HedgehogWindowMixer(m, h, d, s),
                HedgehogWindowMixer::shapes);
        register(RetentionMixer.NAME, (m, h, d, md, s) -> new RetentionMixer(m, h, d, s), RetentionMixer::shapes);
        register(GlaMixer.NAME, (m, h, d, md, s) -> GlaMixer.learned(m, h, d, s), GlaMixer::shapes);
        register(LigerMixer.NAME, (m, h, d, md, s) -> new LigerMixer(m, h, d, s), LigerMixer::shapes);
        register(LigerWindowMixer.NAME, (m, h, d, md, s) -> new LigerWindowMixer(m, h, d, s), LigerWindowMixer::shapes);
        register(Mamba2Mixer.NAME, Mamba2Mixer::new, Mamba2Mixer::shapes);
        register(GatedDeltaNetMixer.NAME, GatedDeltaNetMixer::new, GatedDeltaNetMixer::shapes);
        register(Mamba2Mixer.NAME + "_window", (m, h, d, md, s) -> WindowedMixer.around(Mamba2Mixer.NAME + "_window", m,
                h, d, new Mamba2Mixer(m, h, d, md, s), s),
                (h, d, md, s) -> WindowedMixer.shapes(Mamba2Mixer.shapes(h, d, md, s), h, true),
                WindowedMixer.FACTOR_INIT);
        register(GatedDeltaNetMixer.NAME + "_window", (m, h, d, md, s) -> WindowedMixer.around(
                GatedDeltaNetMixer.NAME + "_window", m, h, d, new GatedDeltaNetMixer(m, h, d, md, s), s),
                (h, d, md, s) -> WindowedMixer.shapes(GatedDeltaNetMixer.shapes(h, d, md, s), h, true),
                WindowedMixer.FACTOR_INIT);
        register(WindowedMixer.WINDOW_ONLY, (m, h, d, md, s) -> WindowedMixer.windowOnly(m, h, d, s),
                (h, d, md, s) -> WindowedMixer.shapes(Map.of(), h, false));
    }

    private MixerRegistry() {
    }

    public static synchronized void register(String name, Factory factory, Shapes shapes) {
        register(name, factory, shapes, MixerSettings.LOLCATS_WINDOW_FACTOR_INIT);
    }

    /** {@link #register} with the mixer's own default initial window factor ({@link #windowFactorInit}). */
    public static synchronized void register(String name, Factory factory, Shapes shapes, double windowFactorInit) {
        if (name.equals(SOFTMAX) || ENTRIES.containsKey(name)) {
            throw new IllegalArgumentException("mixer name already taken: " + name);
        }
        ENTRIES.put(name, new Entry(factory, shapes, windowFactorInit));
    }

    /**
     * The default {@code window_factor_init} of a student whose mixer is {@code name}: LoLCATs' -2.197 unless the
     * mixer registered its own (the windowed SSM and delta-rule mixers: {@link WindowedMixer#FACTOR_INIT}).
     */
    public static synchronized double windowFactorInit(String name) {
        Entry e = ENTRIES.get(name);
        return e == null ? MixerSettings.LOLCATS_WINDOW_FACTOR_INIT : e.windowFactorInit();
    }

    /** Registered mixer names (not including {@link #SOFTMAX}). */
    public static synchronized Set<String> names() {
        return Collections.unmodifiableSet(new LinkedHashSet<>(ENTRIES.keySet()));
    }

    /** True for a registered mixer or {@link #SOFTMAX}. */
    public static synchronized boolean known(String name) {
        return name.equals(SOFTMAX) || ENTRIES.containsKey(name);
    }

    public static synchronized Mixer create(String name, NDManager m, int heads, int headDim, int modelDim,
                                            MixerSettings s) {
        return entry(name).factory().create(m, heads, headDim, modelDim, s);
    }

    /**
     * The attention core a plan entry names: the teacher's softmax attention for {@link #SOFTMAX}, a fresh mixer
     * (parameters in {@code m}) otherwise. Every layer of every model gets its core here.
     */
    public static AttentionCore core(String name, NDManager m, int heads, int headDim, int modelDim, MixerSettings s) {
        return name.equals(SOFTMAX) ? new SoftmaxAttention(m.getDevice()) : create(name, m, heads, headDim, modelDim, s);
    }

    /**
     * The new parameters' names and shapes that {@link #create} would make, in order, without allocating any array;
     * empty for {@link #SOFTMAX}.
     */
    public static synchronized Map<String, Shape> parameterShapes(String name, int heads, int headDim, int modelDim,
                                                                  MixerSettings s) {
        if (name.equals(SOFTMAX)) {
            return Map.of();
        }
        return Collections.unmodifiableMap(new LinkedHashMap<>(entry(name).shapes().of(heads, headDim, modelDim, s)));
    }

    /** The number of new parameters {@link #create} would make (0 for {@link #SOFTMAX}). */
    public static long parameterCount(String name, int heads, int headDim, int modelDim, MixerSettings s) {
        long n = 0;
        for (Shape shape : parameterShapes(name, heads, headDim, modelDim, s).values()) {
            n += shape.size();
        }
        return n;
    }

    private static Entry entry(String name) {
        Entry e = ENTRIES.get(name);
        if (e == null) {
            throw new IllegalArgumentException("unknown mixer '" + name + "' (known: " + names() + ", " + SOFTMAX
                    + ")");
        }
        return e;
    }
}
