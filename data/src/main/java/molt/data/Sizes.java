package molt.data;

import java.util.Locale;

/** Byte counts for messages. */
final class Sizes {
    private Sizes() {
    }

    /** {@code n} bytes as "512 B", "3.2 MB", "4.0 GB" (powers of 1024). */
    static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = {"KB", "MB", "GB", "TB", "PB", "EB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** {@code a * b}, or Long.MAX_VALUE where that overflows (sizes for messages). */
    static long times(long a, long b) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }
}
