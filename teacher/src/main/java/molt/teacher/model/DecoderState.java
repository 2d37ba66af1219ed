package molt.teacher.model;

/**
 * The decoding state of a model: one core state per layer (a KV cache for softmax layers, a fixed-size state for
 * mixers) and the number of tokens seen.
 */
public final class DecoderState implements LanguageModel.DecodingState {
    private final AttentionState[] states;
    private long position;

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

    void advance(long tokens) {
        position += tokens;
    }

    @Override
    public long position() {
        return position;
    }

    @Override
    public long bytes() {
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
