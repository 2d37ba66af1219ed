package molt.pipeline.run;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import molt.teacher.InputException;

/**
 * An OS file lock on {@code RUN_DIR/.lock} that keeps two molt processes out of one run directory. The kernel
 * drops the lock when the process dies, even by SIGKILL, so a stale lock never blocks a resume.
 */
public final class RunLock implements AutoCloseable {
    private final FileChannel channel;
    private final FileLock lock;

    private RunLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /** Takes the lock or fails at once with an {@link InputException} naming the directory. */
    public static RunLock acquire(Path runDir) {
        Path file = runDir.resolve(".lock");
        FileChannel ch = null;
        try {
            Files.createDirectories(runDir);
            ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock l = ch.tryLock();
            if (l == null) {
                ch.close();
                throw new InputException(runDir, "in use by another molt process (lock held on " + file + ")");
            }
            return new RunLock(ch, l);
        } catch (OverlappingFileLockException e) {
            closeQuietly(ch);
            throw new InputException(runDir, "already in use by this process");
        } catch (IOException e) {
            closeQuietly(ch);
            throw new InputException(runDir, "cannot lock run directory: " + e.getMessage(), e);
        }
    }

    /**
     * Whether a live process holds the run directory's lock (the kernel drops it when the holder dies, so a run
     * killed by any signal reads as not running). Takes and at once releases the lock when it is free.
     */
    public static boolean isHeld(Path runDir) {
        Path file = runDir.resolve(".lock");
        if (!Files.isRegularFile(file)) {
            return false;
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            FileLock l = ch.tryLock();
            if (l == null) {
                return true;
            }
            l.release();
            return false;
        } catch (OverlappingFileLockException e) {
            return true;
        } catch (IOException e) {
            throw new InputException(runDir, "cannot check the run lock " + file + ": " + e.getMessage(), e);
        }
    }

    private static void closeQuietly(FileChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // Already failing; the original error is the one to report.
            }
        }
    }

    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            channel.close();
        }
    }
}
