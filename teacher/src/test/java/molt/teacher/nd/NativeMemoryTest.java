package molt.teacher.nd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

/** The allocator settings molt applies at start (glibc only) leave arrays working as before. */
class NativeMemoryTest {
    @Test
    void glibcAcceptsTheSettingsAndArraysStillWork() {
        assumeTrue(System.getProperty("os.name").toLowerCase(java.util.Locale.ROOT).contains("linux"));
        assumeTrue(System.getenv().keySet().stream().noneMatch(k -> k.startsWith("MALLOC_")));
        assertTrue(NativeMemory.configure(), "mallopt refused a setting");
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
}
