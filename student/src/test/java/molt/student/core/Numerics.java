package molt.student.core;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.function.DoubleSupplier;

/**
 * Numeric helpers of the mixer and core tests: fp32-representable random inputs, the relative error they are judged
 * by, and gradients against central finite differences of a double-precision reference.
 */
public final class Numerics {
    /** Step of the central finite differences. */
    public static final double FD_STEP = 1e-5;

    private Numerics() {
    }

    /** {@code n} Gaussian draws times {@code s}, each representable in fp32, so both sides see the same inputs. */
    public static double[] gauss(Random r, int n, double s) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * s);
        }
        return x;
    }

    public static float[] f32(double[] x) {
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = (float) x[i];
        }
        return y;
    }

    /**
     * Relative RMS error of {@code got} against {@code want}, with the reference's norm floored at 1e-3 so an all-zero
     * reference (a gradient that vanishes exactly, e.g. at T = 1) is compared absolutely.
     */
    public static double relErr(float[] got, double[] want) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < want.length; i++) {
            num += (got[i] - want[i]) * (got[i] - want[i]);
            den += want[i] * want[i];
        }
        return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-3);
    }

    public static void assertClose(float[] got, double[] want, double tol, String what) {
        double err = relErr(got, want);
        assertTrue(err < tol, what + ": relative error " + err);
    }

    public static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /**
     * Checks {@code grad}, the gradient of {@code loss} with respect to {@code base}, at {@code count} indices drawn
     * from {@code r} (all drawn first), against central differences of {@code loss} (which reads {@code base}).
     */
    public static void assertGradient(float[] grad, double[] base, int count, Random r, DoubleSupplier loss,
                                      double tol, String what) {
        int[] idx = new int[count];
        for (int j = 0; j < count; j++) {
            idx[j] = r.nextInt(base.length);
        }
        float[] got = new float[count];
        double[] fd = new double[count];
        for (int j = 0; j < count; j++) {
            int i = idx[j];
            got[j] = grad[i];
            double orig = base[i];
            base[i] = orig + FD_STEP;
            double up = loss.getAsDouble();
            base[i] = orig - FD_STEP;
            double down = loss.getAsDouble();
            base[i] = orig;
            fd[j] = (up - down) / (2 * FD_STEP);
        }
        assertClose(got, fd, tol, what + " vs finite differences");
    }

    /** Euclidean norm of {@code x}. */
    public static double norm(double[] x) {
        return Math.sqrt(dot(x, x));
    }

    /** Puts one token's outputs y [BH, 1, W] at time {@code i} of {@code all} [BH, T, W]. */
    public static void putStep(float[] y, float[] all, int t, int i, int width) {
        for (int bh = 0; bh < y.length / width; bh++) {
            System.arraycopy(y, bh * width, all, (bh * t + i) * width, width);
        }
    }

    /** Row {@code row} [W] of a flat array [rows, W]. */
    public static double[] row(double[] x, int row, int w) {
        return java.util.Arrays.copyOfRange(x, row * w, row * w + w);
    }

    /** Stores one head's state s [K][V] into a flat [B*H, K, V] array at head {@code bh}. */
    public static void store(double[][] s, double[] flat, int bh) {
        int k = s.length;
        int v = s[0].length;
        for (int i = 0; i < k; i++) {
            System.arraycopy(s[i], 0, flat, (bh * k + i) * v, v);
        }
    }
}
