package molt.teacher;

import java.util.Locale;

/**
 * How frozen weights (the teacher, and a student's shared base) are held in memory. Trainable parameters, their
 * gradients and optimizer state, losses, norms, softmax and the mixers' states are F32 whatever this says.
 *
 * <ul>
 *   <li>{@code f32}: every weight as F32 (the computation is exactly what it has always been).</li>
 *   <li>{@code f16}: projection matrices, the embedding and the LM head as IEEE half precision, half the memory.
 *       On CPU each is widened to F32 just before use, in the scope of the layer that uses it, and freed with that
 *       scope (F16 matrix multiplication runs at under 1 GFLOP/s on CPU here). On GPU the products run in F16.</li>
 * </ul>
 *
 * <p>The setting {@code auto} chooses by the model's parameter count ({@link #auto}): F32 below
 * {@link #AUTO_F16_PARAMETERS}, where memory is not what limits a run and widening costs time, F16 from there up.
 */
public enum Precision {
    F32, F16;

    /** From this many parameters up, {@code auto} holds frozen weights in 16 bits (see docs/BENCHMARKS.md). */
    public static final long AUTO_F16_PARAMETERS = 100_000_000L;

    /** The setting's spelling in configs and on the command line. */
    public String setting() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Bytes per element of a frozen matrix. */
    public int bytes() {
        return this == F32 ? 4 : 2;
    }

    /** {@code auto}'s choice for a model of {@code parameters} parameters. */
    public static Precision auto(long parameters) {
        return parameters >= AUTO_F16_PARAMETERS ? F16 : F32;
    }

    /**
     * Parses {@code f32}, {@code f16} or {@code auto} (resolved for {@code parameters}); null or blank means
     * {@code auto}. Anything else is an {@link InputException} naming the accepted values.
     */
    public static Precision resolve(String setting, long parameters) {
        String s = setting == null || setting.isBlank() ? "auto" : setting.trim().toLowerCase(Locale.ROOT);
        return switch (s) {
            case "auto" -> auto(parameters);
            case "f32", "float32", "fp32" -> F32;
            case "f16", "float16", "fp16" -> F16;
            default -> throw new InputException("precision: expected f32, f16 or auto, found '" + setting + "'");
        };
    }

    /** True for a valid setting ({@code f32}, {@code f16}, {@code auto} and their long spellings). */
    public static boolean isSetting(String setting) {
        try {
            resolve(setting, 0);
            return true;
        } catch (InputException e) {
            return false;
        }
    }
}
