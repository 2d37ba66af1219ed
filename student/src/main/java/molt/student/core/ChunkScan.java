package molt.student.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;

/**
 * The chunk loop of the matrix recurrences ({@link ScalarDecay}, {@link KeyDecay}, {@link DeltaRule}): split the
 * inputs along time into chunks, carry the state S [B, H, K, V] from chunk to chunk, and join the chunks' outputs.
 * Each recurrence supplies only what one chunk computes.
 */
final class ChunkScan {
    private ChunkScan() {
    }

    /** One chunk of a recurrence. */
    @FunctionalInterface
    interface Step {
        /** The chunk's output [B, H, n, V] and the state after it, from its pieces of the inputs and the state S_in. */
        NDList apply(NDList chunk, NDArray state);
    }

    /**
     * Output [B, H, T, V] and the final state, from {@code initial} (null: zeros [B, H, K, V]). {@code inputs} start
     * with q [B, H, T, K], k and v [B, H, T, V]; the step receives their chunks in the same order.
     */
    static NDList run(NDManager scope, NDArray initial, int chunk, Step step, NDArray... inputs) {
        NDArray state = initial != null ? initial : scope.zeros(MatrixState.shape(inputs[0], inputs[2]));
        NDList[] pieces = new NDList[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            pieces[i] = Masks.chunks(inputs[i], chunk);
        }
        NDList outs = new NDList();
        for (int c = 0; c < pieces[0].size(); c++) {
            NDList x = new NDList();
            for (NDList p : pieces) {
                x.add(p.get(c));
            }
            NDList r = step.apply(x, state);
            outs.add(r.get(0));
            state = r.get(1);
        }
        return new NDList(Masks.unchunk(outs), state);
    }
}
