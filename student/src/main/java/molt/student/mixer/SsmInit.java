package molt.student.mixer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.SplittableRandom;

/** The standard initializations of Mamba-style gated recurrences (Mamba-2, Gated DeltaNet). */
final class SsmInit {
    private SsmInit() {
    }

    /** Uniform in +-bound. */
    static NDArray uniform(NDManager m, SplittableRandom r, Shape s, double bound) {
        float[] v = new float[Math.toIntExact(s.size())];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) ((r.nextDouble() * 2 - 1) * bound);
        }
        return molt.teacher.nd.NativeArrays.floats(m, v, s);
    }

    /**
     * dt_bias [H], the inverse softplus of dt drawn log-uniform in [0.001, 0.1], and A_log [H] = log(A) with A
     * uniform in [1, 16].
     */
    static NDArray[] dtBiasAndALog(NDManager m, SplittableRandom r, int heads) {
        float[] dtBias = new float[heads];
        float[] aLog = new float[heads];
        for (int h = 0; h < heads; h++) {
            double dt = Math.exp(r.nextDouble() * (Math.log(0.1) - Math.log(0.001)) + Math.log(0.001));
            dtBias[h] = (float) (dt + Math.log(-Math.expm1(-dt)));
            aLog[h] = (float) Math.log(1 + 15 * r.nextDouble());
        }
        return new NDArray[] {molt.teacher.nd.NativeArrays.floats(m, dtBias, new Shape(heads)),
            molt.teacher.nd.NativeArrays.floats(m, aLog, new Shape(heads))};
    }
}
