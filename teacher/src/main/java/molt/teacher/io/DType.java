package molt.teacher.io;

import java.util.Locale;

/** Element types that molt reads and writes in safetensors files, with their safetensors names. */
public enum DType {
    F32(4), F16(2), BF16(2), F64(8), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** The safetensors dtype string, e.g. {@code "BF16"}. */
    public String safetensorsName() {
        return name();
    }

    /** Parses a safetensors dtype string; returns {@code null} for a type molt does not know. */
    public static DType fromSafetensors(String s) {
        try {
            return valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** True for floating-point types that molt widens to F32 on read. */
    public boolean isFloat() {
        return this == F32 || this == F16 || this == BF16 || this == F64;
    }
}
