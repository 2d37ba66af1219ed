package molt.teacher.cpu;

/**
 * One layer's attention core in its recurrent form, in plain Java, for one sequence: what a decoding step runs on
 * the CPU instead of the core's libtorch ops ({@code AttentionCore#cpuStep}). It holds its own state, continued
 * from the core's state after a prefill, and must compute the same function as the core's {@code step} (tests
 * compare them).
 */
public interface CpuStep {

    /**
     * One token's input to a core, the buffers reused from step to step: the layer's normed hidden state
     * {@code hidden} [M]; q [Hq * D] and k [Hkv * D] after RoPE, {@code qRaw} and {@code kRaw} before it; v
     * [Hkv * D]. Keys and values come before the GQA repeat (query head h reads key/value head h / groups).
     */
    final class Input {
        public final float[] hidden;
        public final float[] q;
        public final float[] k;
        public final float[] v;
        public final float[] qRaw;
        public final float[] kRaw;

        public Input(int model, int qDim, int kvDim) {
            hidden = new float[model];
            q = new float[qDim];
            k = new float[kvDim];
            v = new float[kvDim];
            qRaw = new float[qDim];
            kRaw = new float[kvDim];
        }
    }

    /** One token at the next position; writes the core's output [Hq * D] to {@code out} and advances the state. */
    void step(Input in, float[] out);

    /** Bytes the state holds, counted as the core's engine state counts them. */
    long bytes();
}
