package molt.student.core;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.function.Function;

/**
 * Decoding state of a matrix-valued recurrence ({@link ScalarDecay}, {@link KeyDecay}, {@link DeltaRule}): the
 * state S [B, H, K, V] in fp32, constant in size. Retention, GLA and Liger's GLA keep only S; {@link ConvSsmState}
 * and {@link MatrixWindowState} add what their mixers carry beside it.
 */
public class MatrixState extends OwnedState {
    private NDArray s;

    public MatrixState(Device device) {
        super(device);
    }

    /** A state holding a copy of {@code s} [B, H, K, V], e.g. the final state of a chunked form. */
    public static MatrixState after(NDManager scope, NDArray s) {
        MatrixState st = new MatrixState(scope.getDevice());
        st.hold(s);
        return st;
    }

    /** The zero state's shape [B, H, K, V] for queries (or keys) q [B, H, T, K] and values v [B, H, T, V]. */
    public static Shape shape(NDArray q, NDArray v) {
        Shape qs = q.getShape();
        return new Shape(qs.get(0), qs.get(1), qs.get(3), v.getShape().get(3));
    }

    /** Takes a copy of {@code fresh} as S. */
    final void hold(NDArray fresh) {
        s = own(fresh.duplicate());
    }

    /** S [B, H, K, V], or null before the first token. */
    public NDArray matrix() {
        return s;
    }

    /**
     * One decoding step of a recurrence: {@code recurrence} maps S (zeros of {@link #shape}(q, v) before the first
     * token) to the step's output and the next S (an {@code NDList} of two, as the cores' {@code step} return them);
     * the state keeps a copy of the next S and the output, in {@code scope}, is returned. The recurrence must not
     * make S the first operand of an op, or its results would land in the state's manager.
     */
    public NDArray step(NDManager scope, NDArray q, NDArray v, Function<NDArray, NDList> recurrence) {
        if (s == null) {
            s = own(scope.zeros(shape(q, v)));
        }
        NDList r = recurrence.apply(s);
        NDArray next = r.get(1);
        next.attach(scope); // the copy below goes to the state; this one stays a per-step temporary
        s = swap(s, next.duplicate());
        return r.get(0);
    }

    @Override
    public long bytes() {
        return bytesOf(s);
    }
}
