package molt.teacher.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import molt.teacher.LlamaConfig;

/** A causal language model that the commands can run: the teacher, or a student built on it. */
public interface LanguageModel extends AutoCloseable {

    /** The base architecture (vocabulary, sizes). */
    LlamaConfig config();

    Device device();

    /** Parallel forward: logits [B, T, V] for equal-length sequences, attached to {@code out}. */
    NDArray logits(NDManager out, long[][] tokens);

    /** A fresh decoding state. */
    DecodingState newState();

    /**
     * Feeds tokens [B, t] on top of the state (prefill, or one step when t = 1) and returns their logits
     * [B, t, V] attached to {@code out}.
     */
    NDArray decode(NDManager out, DecodingState state, long[][] tokens);

    /** Sets where single-sequence decoding steps run ({@link DecodeEngine}; default auto). */
    void setDecodeEngine(DecodeEngine engine);

    @Override
    void close();

    /** What a model remembers between decoding steps. */
    interface DecodingState extends AutoCloseable {
        /** Tokens seen so far. */
        long position();

        /** Bytes of memory the state holds. */
        long bytes();

        /** Where its decoding steps run now ({@link DecodeEngine}): {@code java} or {@code djl}. */
        String engine();

        @Override
        void close();
    }
}
