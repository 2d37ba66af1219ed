package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Map;
import molt.teacher.cpu.CpuStep;

/**
 * The part of a decoder layer between the q/k/v projections and o_proj: softmax attention with its KV cache
 * ({@link SoftmaxAttention}), or a sub-quadratic mixer. Every core has a parallel form for training and prefill
 * ({@link #forward}) and a recurrent form for decoding ({@link #step}) that compute the same function; the decoder
 * layer ({@link DecoderLayer}) knows nothing else about it.
 *
 * <p>Shapes: B batch, H query heads, T time, D head dim.
 */
public interface AttentionCore {

    /** Output [B, H, T, D] and, when asked, the decoding state after the last token. */
    record Output(NDArray out, AttentionState state) {
    }

    /** The core's trainable parameters by name, e.g. {@code feature_map_q.weight} [H, D, F]; may be empty. */
    Map<String, NDArray> parameters();

    /**
     * The parallel form from an empty state; results belong to {@code scope} (or the inputs' manager). With
     * {@code withState}, also returns the state a decoder needs to continue after the last token.
     */
    Output forward(NDManager scope, AttentionInput in, boolean withState);

    /** An empty decoding state. */
    AttentionState newState();

    /**
     * The recurrent form: input at positions state.position.. -> output [B, H, T, D]; updates {@code state} in
     * place. Cores whose {@link #stepsMany} is false take one token (T = 1).
     */
    NDArray step(NDManager scope, AttentionState state, AttentionInput in);

    /** True when {@link #step} takes several tokens at once (softmax attention); mixers step one token. */
    default boolean stepsMany() {
        return false;
    }

    /**
     * The recurrent form in plain Java for one sequence, continuing from {@code prefilled} (this core's state after
     * a prefill of batch 1), for a model with {@code kvGroups} query heads per key/value head; null when the core
     * has none, and decoding stays on the engine. The state's values are copied: {@code prefilled} is left as it was.
     */
    default CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        return null;
    }

    /** The softmax weights [B, H, T, T] of the parallel form, for cores that have them (null otherwise). */
    default NDArray attentionWeights(NDManager scope, AttentionInput in) {
        return null;
    }
}
