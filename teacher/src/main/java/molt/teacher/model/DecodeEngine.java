package molt.teacher.model;

import molt.teacher.InputException;

/**
 * Where single-sequence decoding steps run. A step of a small model is hundreds of tiny libtorch ops, each costing
 * microseconds of call overhead whatever its size, so on the CPU the same step in plain Java
 * ({@link molt.teacher.cpu.CpuStep}, {@link CpuDecoding}) is several times faster; prefill always runs on the
 * engine (its products are large).
 */
public enum DecodeEngine {
    /** Plain Java where it applies (see {@link #JAVA}) and the model is small enough; the engine otherwise. */
    AUTO("auto"),
    /** Every step through libtorch ops (DJL). */
    DJL("djl"),
    /**
     * Plain Java for steps of batch 1 on the CPU with F32 frozen weights, when every layer's core has a Java form;
     * an error otherwise.
     */
    JAVA("java");

    /**
     * AUTO's limit: models with at most this many parameters decode in plain Java. Measured on the 2-core CPU
     * machine, idle, context 512 ({@code molt bench decode --engine djl,java --threads 1,2}, docs/BENCHMARKS.md):
     * Java against libtorch at one thread was 2.3 : 1 at 0.5M parameters (the quickstart), 1.2 : 1 at 3.5M, 1.05 : 1
     * at 7.6M and 0.68 : 1 at 36M; a step in Java runs its products at about 8 GFLOP/s on one core, so above a few
     * million parameters libtorch's faster products win. The Java copy of the weights costs 4 bytes per parameter.
     */
    public static final long AUTO_MAX_PARAMETERS = 4_000_000L;

    private final String setting;

    DecodeEngine(String setting) {
        this.setting = setting;
    }

    /** The name configs and options use. */
    public String setting() {
        return setting;
    }

    /** The engine named {@code s}: auto, djl or java. */
    public static DecodeEngine parse(String s) {
        for (DecodeEngine e : values()) {
            if (e.setting.equals(s)) {
                return e;
            }
        }
        throw new InputException("decode engine: expected auto, djl or java, found '" + s + "'");
    }
}
