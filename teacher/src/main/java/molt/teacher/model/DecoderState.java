package molt.teacher.model;

/**
 * The decoding state of a model: one core state per layer (a KV cache for softmax layers, a fixed-size state for
 * mixers) and the number of tokens seen.
 */
public final class DecoderState implements LanguageModel.DecodingState {
    private final AttentionState[] states;
    private long position;
    /** Set once the steps run in plain Java; the engine states are then closed. */
    private CpuDecoding cpu;
    /** True once a switch to plain Java was found impossible (a core without a Java form, a batch above 1). */
    private boolean engineOnly;

    public DecoderState(int layers) {
        this.states = new AttentionState[layers];
    }

    /** Layer i's state, created empty by its core on first use. */
    AttentionState get(int layer, AttentionCore core) {
        if (states[layer] == null) {
            states[layer] = core.newState();
        }
        return states[layer];
    }

    /** Sets layer i's state, closing the one it replaces. */
    void set(int layer, AttentionState s) {
        if (states[layer] != null && states[layer] != s) {
            states[layer].close();
        }
        states[layer] = s;
    }

    /** The plain-Java steps, or null while the state is on the engine. */
    CpuDecoding cpu() {
        return cpu;
    }

    /** Continues in plain Java from here on: the engine's per-layer states are closed (their values were copied). */
    void useCpu(CpuDecoding steps) {
        this.cpu = steps;
        for (int i = 0; i < states.length; i++) {
            if (states[i] != null) {
                states[i].close();
                states[i] = null;
            }
        }
    }

    /** True once this state was found unable to continue in plain Java. */
    boolean engineOnly() {
        return engineOnly;
    }

    void markEngineOnly() {
        engineOnly = true;
    }

    @Override
    public String engine() {
        return cpu != null ? DecodeEngine.JAVA.setting() : DecodeEngine.DJL.setting();
    }

    void advance(long tokens) {
        position += tokens;
    }

    @Override
    public long position() {
        return position;
    }

    @Override
    public long bytes() {
        if (cpu != null) {
            return cpu.bytes();
        }
        long n = 0;
        for (AttentionState s : states) {
            n += s == null ? 0 : s.bytes();
        }
        return n;
    }

    @Override
    public void close() {
        for (AttentionState s : states) {
            if (s != null) {
                s.close();
            }
        }
    }
}
