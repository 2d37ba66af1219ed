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
     * AUTO's limit: models with at most this many parameters decode in Java (the copy of the weights it needs costs
     * 4 bytes per parameter). Measured with {@code molt bench decode --engine djl,java} (docs/BENCHMARKS.md).
     */
    public static final long AUTO_MAX_PARAMETERS = 600_000_000L;

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
