package molt.teacher.nd;

import com.sun.jna.Library;
import com.sun.jna.Native;
import org.apache.logging.log4j.LogManager;

/**
 * How the C library's allocator treats the arrays libtorch frees. libtorch allocates CPU tensors with glibc's malloc,
 * and a training step allocates and frees gigabytes of short-lived arrays. Two settings ({@link Mode}) trade speed
 * against resident memory; {@link #trim} (glibc's malloc_trim), called at each training step's start, hands the
 * previous step's freed pages back in both. On other C libraries nothing here does anything.
 */
public final class NativeMemory {
    private static final CLib C = load();

    /** Teachers from this many parameters up train with {@link Mode#TIGHT}, smaller ones with {@link Mode#REUSE}. */
    public static final long REUSE_BELOW_PARAMETERS = 1_000_000_000L;

    /**
     * The same threshold where 16-bit frozen weights multiply in BF16 ({@link Bf16Products}): no widened F32 copies,
     * so a larger model fits with freed blocks kept. Measured at the Llama-3.2-1B shape on an AMX CPU: REUSE ran
     * attention transfer at 116 against 82 tokens/s and LoRA at 45 against 29 (page faults per LoRA step 1.9M against
     * 14M), at 4.2 and 5.6 GiB against 3.9 and 4.8 (docs/BENCHMARKS.md).
     */
    public static final long REUSE_BELOW_PARAMETERS_BF16 = 2_000_000_000L;

    private static volatile Mode current;

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

    /** {@link Mode#TIGHT}: blocks from this size up get pages of their own, returned to the system when freed. */
    static final int MMAP_THRESHOLD = 1 << 20;
    /** {@link Mode#REUSE}: blocks below this size come from the heap (larger ones are mapped on their own). */
    static final int REUSE_MMAP_THRESHOLD = 1 << 29;

    /** The allocator's settings. */
    public enum Mode {
        /**
         * Freed blocks stay in the heap for the step's next arrays (blocks below 512 MiB come from the heap, which is
         * never trimmed on free, in one arena); the step's start trims it. No fresh pages are faulted in for arrays
         * the step has freed before. Measured at the SmolLM2-135M shape: attention transfer 34% and LoRA 32% more
         * tokens/s than {@link #TIGHT}, at 0.3 and 0.55 GiB more peak memory (docs/BENCHMARKS.md).
         */
        REUSE,
        /**
         * Resident memory follows what is live: blocks of 1 MiB and more are mapped on their own and unmapped when
         * freed, the heap's top is trimmed from 1 MiB of free space, and at most 2 arenas exist. Every large array
         * then faults in fresh zeroed pages (at the SmolLM2 shape 40% of the step's CPU time went to the kernel).
         * Measured at the Llama-3.2-1B shape: LoRA's step peaked 1.3 GiB lower than with {@link #REUSE}, and at the
         * Llama-3-8B shape it is what keeps a step under 20 GiB.
         */
        TIGHT
    }

    /**
     * The mode molt uses for training a teacher of this many parameters, whose frozen weights multiply in BF16 or not
     * ({@code bf16Products}: 16-bit weights on a CPU with AMX).
     */
    public static Mode modeFor(long parameters, boolean bf16Products) {
        return parameters >= (bf16Products ? REUSE_BELOW_PARAMETERS_BF16 : REUSE_BELOW_PARAMETERS) ? Mode.TIGHT
                : Mode.REUSE;
    }

    /**
     * Sets glibc's allocator to {@code mode} (at start, before the engine allocates, and again once a run knows its
     * teacher's size: blocks allocated before keep where they are). Does nothing when the user set any MALLOC_
     * variable (their choice stands) or off glibc; true when applied.
     */
    public static boolean configure(Mode mode) {
        if (C == null || System.getenv().keySet().stream().anyMatch(k -> k.startsWith("MALLOC_"))) {
            return false;
        }
        try {
            boolean ok = mode == Mode.TIGHT
                    ? C.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 && C.mallopt(M_TRIM_THRESHOLD, MMAP_THRESHOLD) == 1
                            && C.mallopt(M_TOP_PAD, 0) == 1 && C.mallopt(M_ARENA_MAX, 2) == 1
                    : C.mallopt(M_MMAP_THRESHOLD, REUSE_MMAP_THRESHOLD) == 1
                            && C.mallopt(M_TRIM_THRESHOLD, Integer.MAX_VALUE) == 1 && C.mallopt(M_TOP_PAD, 0) == 1
                            && C.mallopt(M_ARENA_MAX, 1) == 1;
            if (ok && current != mode) {
                LogManager.getLogger(NativeMemory.class).debug("allocator: {}", mode);
                current = mode;
            }
            return ok;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    /** The mode last applied, or null when molt left the allocator alone. */
    public static Mode mode() {
        return current;
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

    /**
     * Minor page faults of this process so far (/proc/self/stat, field 10), or -1 off Linux: each is a page the
     * kernel mapped and zeroed on first touch, what the two {@link Mode}s trade against resident memory.
     */
    public static long minorFaults() {
        try {
            String stat = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" "); // fields from 3 (state) on
            return Long.parseLong(f[7]);
        } catch (java.io.IOException | RuntimeException e) {
            return -1;
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
