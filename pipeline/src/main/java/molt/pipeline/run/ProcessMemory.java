package molt.pipeline.run;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * This process's resident memory as Linux reports it: the current RSS, and the peak since the last
 * {@link #resetPeak} (VmHWM, which writing 5 to /proc/self/clear_refs resets). Elsewhere every value is -1.
 */
public final class ProcessMemory {
    private static final Path STATUS = Path.of("/proc/self/status");
    private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");

    private ProcessMemory() {
    }

    /** Resident memory in MiB, or -1. */
    public static long rssMib() {
        return field("VmRSS:");
    }

    /** The largest resident memory in MiB since the process started or since {@link #resetPeak}, or -1. */
    public static long peakMib() {
        return field("VmHWM:");
    }

    /** Starts a new peak at the current RSS; false where the kernel does not allow it. */
    public static boolean resetPeak() {
        try {
            Files.writeString(CLEAR_REFS, "5");
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    private static long field(String name) {
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith(name)) {
                    return Long.parseLong(line.replaceAll("\\D+", "")) / 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return -1;
    }
}
