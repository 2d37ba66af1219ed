package molt.teacher.cpu;

/**
 * One layer's attention core in its recurrent form, in plain Java, for one sequence: what a decoding step runs on
 * the CPU instead of the core's libtorch ops ({@code AttentionCore#cpuStep}). It holds its own state, continued
 * from the core's state after a prefill, and must compute the same function as the core's {@code step} (tests
 * compare them).
 *
 * <p>Layouts: q [Hq * D] after RoPE; k [Hkv * D] after RoPE and v [Hkv * D], before the GQA repeat; out [Hq * D].
 */
public interface CpuStep {

    /** One token at the next position; writes the core's output for it to {@code out} and advances the state. */
    void step(float[] q, float[] k, float[] v, float[] out);

    /** Bytes the state holds, counted as the core's engine state counts them. */
    long bytes();
}
