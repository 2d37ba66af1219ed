package molt.teacher.io;

import java.nio.file.Path;
import molt.teacher.InputException;

/**
 * Converting one tensor's values to IEEE half precision (F16), with an account of what changed. F16 holds every
 * F16 value and every BF16 value whose magnitude lies in [2^-14, 65504] exactly (BF16 has 8 significant bits, F16
 * 11); BF16 values below 2^-14 become F16 subnormals, exact down to 2^-17 and rounded below, and values under
 * 2^-25 are flushed to zero. F32 values are rounded to nearest even.
 *
 * <p>A tensor is refused when a finite value overflows F16 (it would become infinite), or when the conversion's
 * relative L2 error {@code ||x16 - x|| / ||x||} exceeds {@link #MAX_RELATIVE_ERROR}: 2^-11, the unit roundoff of
 * F16, which is what rounding every value of an F32 tensor costs at most. Measured on BF16 tensors drawn from
 * N(0, 0.02) (Llama's initialization), the error from subnormals is about 1e-6, three orders below the bound.
 */
public final class HalfConversion {
    /** The largest relative L2 error accepted for one tensor: F16's unit roundoff, 2^-11. */
    public static final double MAX_RELATIVE_ERROR = 0x1p-11;
    /** The largest finite F16 value. */
    public static final float MAX_F16 = 65504f;

    private long values;
    private long inexact;
    private long flushed;
    private long overflow;
    private long nonFinite;
    private long firstNonFinite = -1;
    private double sumSquares;
    private double sumSquaredError;
    private double maxAbsError;

    /** F16 bits of {@code v}, counted. */
    public short convert(float v) {
        short h = Floats.floatToF16(v);
        if (!Float.isFinite(v) && nonFinite++ == 0) {
            firstNonFinite = values;
        }
        values++;
        float back = Floats.f16ToFloat(h);
        if (Float.floatToRawIntBits(back) != Float.floatToRawIntBits(v) && !(Float.isNaN(v) && Float.isNaN(back))) {
            if (Float.isFinite(v) && Float.isInfinite(back)) {
                overflow++;
                return h;
            }
            inexact++;
            if (back == 0f && v != 0f) {
                flushed++;
            }
            double err = (double) back - v;
            sumSquaredError += err * err;
            maxAbsError = Math.max(maxAbsError, Math.abs(err));
        }
        if (Float.isFinite(v)) {
            sumSquares += (double) v * v;
        }
        return h;
    }

    public long values() {
        return values;
    }

    /** Values that changed (rounded, made subnormal with lost bits, or flushed). */
    public long inexact() {
        return inexact;
    }

    /** Non-zero values that became zero. */
    public long flushed() {
        return flushed;
    }

    /** Finite values beyond F16's range. */
    public long overflow() {
        return overflow;
    }

    public double maxAbsError() {
        return maxAbsError;
    }

    /** ||x16 - x|| / ||x|| (0 for an all-zero tensor). */
    public double relativeError() {
        return sumSquares == 0 ? 0 : Math.sqrt(sumSquaredError / sumSquares);
    }

    /** Adds another tensor's account to this one (for a model-wide summary). */
    public void add(HalfConversion o) {
        values += o.values;
        inexact += o.inexact;
        flushed += o.flushed;
        overflow += o.overflow;
        nonFinite += o.nonFinite;
        sumSquares += o.sumSquares;
        sumSquaredError += o.sumSquaredError;
        maxAbsError = Math.max(maxAbsError, o.maxAbsError);
    }

    /**
     * Refuses the tensor {@code name} of {@code origin} when converting it would change results: any overflow, or a
     * relative error above {@link #MAX_RELATIVE_ERROR}. The message says what was found and how to load it anyway.
     */
    public void check(Path origin, String name) {
        if (nonFinite > 0) {
            throw new InputException(origin, name + ": element " + firstNonFinite + " is not finite (" + nonFinite
                    + " such values; weights must be finite)");
        }
        if (overflow > 0) {
            throw new InputException(origin, name + ": " + overflow + " of " + values + " values exceed F16's range "
                    + "(|x| > 65504) and would become infinite; load this model with --precision f32 (precision: f32)");
        }
        if (relativeError() > MAX_RELATIVE_ERROR) {
            throw new InputException(origin, String.format("%s: converting to F16 changes the tensor by a relative "
                    + "L2 error of %.3g (%d of %d values inexact, %d flushed to zero), above the %.3g that F16 "
                    + "rounding allows; load this model with --precision f32 (precision: f32)", name,
                    relativeError(), inexact, values, flushed, MAX_RELATIVE_ERROR));
        }
    }

    /** One line for the log. */
    public String summary() {
        return String.format("%,d values to F16: %,d inexact, %,d flushed to zero, %,d out of range; relative L2 "
                + "error %.3g, largest absolute error %.3g", values, inexact, flushed, overflow, relativeError(),
                maxAbsError);
    }
}
