package molt.teacher.nd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The allocator settings molt applies (glibc only): arrays work as before, and REUSE does reuse freed blocks. */
class NativeMemoryTest {
    private static final int MIB = 1 << 20;

    private static void assumeGlibcSettingsApply() {
        assumeTrue(System.getProperty("os.name").toLowerCase(java.util.Locale.ROOT).contains("linux"));
        assumeTrue(System.getenv().keySet().stream().noneMatch(k -> k.startsWith("MALLOC_")));
    }

    @Test
    void glibcAcceptsBothModesAndArraysStillWork() {
        assumeGlibcSettingsApply();
        for (NativeMemory.Mode mode : NativeMemory.Mode.values()) {
            assertTrue(NativeMemory.configure(mode), "mallopt refused a setting of " + mode);
            assertEquals(mode, NativeMemory.mode());
            try (NDManager m = NDManager.newBaseManager()) {
                for (int i = 0; i < 20; i++) { // blocks above and below the 1 MiB threshold, allocated and freed
                    NDArray big = m.ones(new Shape(NativeMemory.MMAP_THRESHOLD / 2)); // 2 MiB of F32
                    NDArray small = m.ones(new Shape(1000));
                    assertEquals(NativeMemory.MMAP_THRESHOLD / 2.0, big.sum().getFloat(), 0);
                    assertEquals(1000f, small.sum().getFloat(), 0);
                    big.close();
                    small.close();
                }
            }
            NativeMemory.trim();
        }
        NativeMemory.configure(NativeMemory.Mode.REUSE);
    }

    /**
     * 4 MiB arrays allocated, filled and freed 40 times: TIGHT maps each one afresh (about 1,024 page faults each),
     * REUSE hands the freed block back to the next one (mostly: see below). Each mode is measured in a fresh
     * JVM, as molt runs: which arena a thread allocates from is fixed at its first allocation, so the heap state that
     * other tests leave in this JVM would blur the comparison.
     */
    @Test
    void reuseAvoidsFaultingInFreedBlocksAgain() throws Exception {
        assumeGlibcSettingsApply();
        long tight = faultsInFreshJvm(NativeMemory.Mode.TIGHT);
        long reuse = faultsInFreshJvm(NativeMemory.Mode.REUSE);
        assertTrue(tight > 40 * 4 * MIB / 4096 / 2, "TIGHT should fault in every fresh block: " + tight);
        // The JVM's main thread allocates from an arena made before molt's settings (a second heap there is given
        // back once wholly free), so REUSE's share varies from run to run: 3.6x to over 10x fewer faults measured;
        // REUSE set to TIGHT's threshold measures 1.0x.
        assertTrue(reuse * 2 < tight, "REUSE should reuse the freed blocks: " + reuse + " faults vs TIGHT " + tight);
    }

    private static long faultsInFreshJvm(NativeMemory.Mode mode) throws Exception {
        Path launcher = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(launcher.toString(), "-cp", System.getProperty("java.class.path"),
                Probe.class.getName(), mode.name()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        String[] lines = out.strip().split("\\R");
        return Long.parseLong(lines[lines.length - 1].trim());
    }

    /** The child JVM: sets the mode, then prints the faults of 40 fresh 4 MiB arrays on its main thread. */
    public static final class Probe {
        public static void main(String[] args) {
            if (!NativeMemory.configure(NativeMemory.Mode.valueOf(args[0]))) {
                throw new IllegalStateException("mallopt refused " + args[0]);
            }
            try (NDManager m = NDManager.newBaseManager()) {
                m.ones(new Shape(4 * MIB / 4)).close(); // the first block may fault in either mode
                long before = NativeMemory.minorFaults();
                for (int i = 0; i < 40; i++) {
                    NDArray a = m.ones(new Shape(4 * MIB / 4)); // 4 MiB of F32, every page written
                    a.close();
                }
                System.out.println(NativeMemory.minorFaults() - before);
            }
        }
    }
}
