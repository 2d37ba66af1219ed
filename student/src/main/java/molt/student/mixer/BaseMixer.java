package molt.student.mixer;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;
import molt.teacher.model.AttentionState;

/**
 * What every mixer holds besides its math: its registry name, settings, device, and its new parameters, created in
 * the order and with the shapes its static {@code shapes} declares (the shapes {@link MixerRegistry} reports without
 * building the mixer). Subclasses keep only their parameters' initializations and the calls into
 * {@code molt.student.core}.
 */
abstract class BaseMixer implements Mixer {
    private final String name;
    private final Map<String, Shape> shapes;
    private final Map<String, NDArray> params = new LinkedHashMap<>();
    private final Function<Device, AttentionState> states;
    final MixerSettings settings;
    final Device device;

    /** {@code states} makes the mixer's empty decoding state on a device. */
    BaseMixer(String name, NDManager m, MixerSettings settings, Map<String, Shape> shapes,
              Function<Device, AttentionState> states) {
        this.name = name;
        this.settings = settings;
        this.device = m.getDevice();
        this.shapes = shapes;
        this.states = states;
    }

    @Override
    public final String name() {
        return name;
    }

    /** The parameters by checkpoint name, in creation order (the order checkpoints and optimizers see). */
    @Override
    public final Map<String, NDArray> parameters() {
        return Collections.unmodifiableMap(params);
    }

    @Override
    public final AttentionState newState() {
        return states.apply(device);
    }

    /** The declared shape of parameter {@code name}. */
    final Shape shape(String name) {
        Shape s = shapes.get(name);
        if (s == null) {
            throw new IllegalStateException(this.name + " declares no parameter " + name);
        }
        return s;
    }

    /** Registers {@code value} as parameter {@code name} (at its declared shape) and makes it trainable. */
    final NDArray param(String name, NDArray value) {
        if (!value.getShape().equals(shape(name))) {
            throw new IllegalStateException(this.name + "." + name + " is " + value.getShape() + ", declared "
                    + shape(name));
        }
        value.setRequiresGradient(true);
        params.put(name, value);
        return value;
    }

    /** Registers parameter {@code name} drawn uniform in +-bound from {@code r}. */
    final NDArray uniform(String name, NDManager m, SplittableRandom r, double bound) {
        return param(name, SsmInit.uniform(m, r, shape(name), bound));
    }

    /** Registers parameter {@code name} filled with {@code value}, as floats. */
    final NDArray constant(String name, NDManager m, float value) {
        float[] v = new float[Math.toIntExact(shape(name).size())];
        java.util.Arrays.fill(v, value);
        return param(name, molt.teacher.nd.NativeArrays.floats(m, v, shape(name)));
    }

    /**
     * Parameter {@code name} as a view in {@code owner}'s manager: ops whose first operand is a parameter land in the
     * parameters' manager, so the mixers read their parameters through views attached to the per-call scope.
     */
    final NDArray view(String name, NDArray owner) {
        NDArray p = params.get(name);
        NDArray a = p.reshape(p.getShape()); // a view that can leave the parameter's manager
        a.attach(owner.getManager());
        return a;
    }

    /** sigmoid of a per-head parameter f [H], as [1, H, 1, 1] owned by {@code owner}'s manager (a window's weight). */
    static NDArray headGate(NDArray f, NDArray owner) {
        NDArray g = f.getNDArrayInternal().sigmoid(); // [H], in the parameter's manager until attached
        g.attach(owner.getManager());
        return g.reshape(1, f.getShape().get(0), 1, 1); // [1, H, 1, 1]
    }

    /** sigmoid(f) per head as Java values (the window weights of the plain-Java steps). */
    static float[] headGateValues(NDArray f) {
        float[] g = molt.teacher.nd.NativeArrays.values(f);
        for (int h = 0; h < g.length; h++) {
            g[h] = molt.teacher.cpu.Kernels.sigmoid(g[h]);
        }
        return g;
    }

    /** For windowed mixers: every query's window must fit in its own and the previous chunk. */
    final void requireChunkAtLeastWindow() {
        if (settings.chunkSize() < settings.window()) {
            throw new IllegalArgumentException(name + " needs chunk_size >= window, found chunk_size "
                    + settings.chunkSize() + " and window " + settings.window());
        }
    }
}
