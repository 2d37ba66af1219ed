package molt.teacher.nd;

import com.sun.jna.Library;
import com.sun.jna.Native;
import org.apache.logging.log4j.LogManager;

/**
 * Hands freed native memory back to the operating system. libtorch allocates CPU tensors with the C library's
 * malloc; glibc keeps freed blocks of up to 32 MiB in its arenas for reuse, so a process's resident memory stays at
 * its highest point: after attention transfer the LoRA stage started 4 GiB above what it held (measured at the
 * SmolLM2-135M shape). {@link #trim} (glibc's malloc_trim) releases every free page; on other C libraries it does
 * nothing.
 */
public final class NativeMemory {
    private static final CLib C = load();

    private NativeMemory() {
    }

    /** glibc's malloc_trim. */
    interface CLib extends Library {
        int malloc_trim(long pad);
    }

    private static CLib load() {
        try {
            if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
                return null;
            }
            return Native.load("c", CLib.class);
        } catch (RuntimeException | LinkageError e) {
            LogManager.getLogger(NativeMemory.class).debug("malloc_trim unavailable: {}", e.toString());
            return null;
        }
    }

    /** Returns free native memory to the system; true when the C library released some. */
    public static boolean trim() {
        if (C == null) {
            return false;
        }
        try {
            return C.malloc_trim(0) != 0;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }
}
