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

    /** glibc's malloc_trim and mallopt. */
    interface CLib extends Library {
        int malloc_trim(long pad);

        int mallopt(int param, int value);
    }

    /** mallopt's parameters (glibc's malloc.h). */
    private static final int M_TRIM_THRESHOLD = -1;
    private static final int M_TOP_PAD = -2;
    private static final int M_MMAP_THRESHOLD = -3;
    private static final int M_ARENA_MAX = -8;

    /** Blocks from this size up get pages of their own, returned to the system when freed. */
    static final int MMAP_THRESHOLD = 1 << 20;

    /**
     * Sets glibc's allocator so that resident memory follows what is live (call once, before the engine allocates):
     * blocks of 1 MiB and more are mapped on their own and unmapped when freed (by default the threshold grows to
     * 32 MiB as large blocks are freed, and freed blocks below it stay in the heap, where the layer-by-layer
     * allocations of a training step fragment it), the heap's top is trimmed from 1 MiB of free space, and at most 2
     * arenas exist. Measured at the Llama-3.2-1B shape: LoRA's step peaked 0.5 GiB lower (docs/BENCHMARKS.md). Does
     * nothing when the user set any MALLOC_ variable (their choice stands) or off glibc; true when applied.
     */
    public static boolean configure() {
        if (C == null || System.getenv().keySet().stream().anyMatch(k -> k.startsWith("MALLOC_"))) {
            return false;
        }
        try {
            return C.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 && C.mallopt(M_TRIM_THRESHOLD, MMAP_THRESHOLD) == 1
                    && C.mallopt(M_TOP_PAD, 0) == 1 && C.mallopt(M_ARENA_MAX, 2) == 1;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
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
