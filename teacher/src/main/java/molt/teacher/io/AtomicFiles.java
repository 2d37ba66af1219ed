package molt.teacher.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import molt.teacher.InputException;

/** Writes small files so that a reader never sees a half-written one: temporary name, fsync, atomic rename. */
public final class AtomicFiles {
    private AtomicFiles() {
    }

    /** Writes the body of a file through an open channel. */
    @FunctionalInterface
    public interface Body {
        void write(FileChannel ch) throws IOException;
    }

    public static void writeString(Path target, String content) throws IOException {
        writeBytes(target, content.getBytes(StandardCharsets.UTF_8));
    }

    public static void writeBytes(Path target, byte[] content) throws IOException {
        write(target, ch -> {
            ByteBuffer buf = ByteBuffer.wrap(content);
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
        });
    }

    /**
     * Writes {@code target} through {@code body} into a temporary file beside it, fsyncs it and renames it onto
     * the target, so a reader sees the old file or the whole new one. A target that is a directory is refused
     * before anything is written; on any failure the temporary file is removed and the target is untouched. A
     * file-system failure (full disk, no permission, read-only) is an {@link InputException} naming the target.
     */
    public static void write(Path target, Body body) throws IOException {
        if (Files.isDirectory(target)) {
            throw new InputException(target, "is a directory (expected a file name to write)");
        }
        Path dir = target.toAbsolutePath().getParent();
        Path tmp = dir.resolve("." + target.getFileName() + ".tmp");
        try {
            Files.createDirectories(dir);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                body.write(ch);
                ch.force(true);
            }
            moveAtomically(tmp, target);
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw new InputException(target, "cannot write: " + describe(e), e);
        } catch (RuntimeException e) {
            deleteQuietly(tmp);
            throw e;
        }
    }

    /** One line for a file-system failure: the reason, and the path when it is another file than the target. */
    public static String describe(IOException e) {
        if (e instanceof java.nio.file.FileSystemException f) {
            String reason = f.getReason() != null ? f.getReason() : e.getClass().getSimpleName();
            return f.getFile() == null ? reason : f.getFile() + ": " + reason;
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // The original failure is the one to report.
        }
    }

    /** Renames {@code from} onto {@code to} atomically, then fsyncs the directory so the rename is durable. */
    public static void moveAtomically(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
        syncDirectory(to.toAbsolutePath().getParent());
    }

    /** fsync of a directory (best effort: not every file system allows opening a directory). */
    public static void syncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // Durability of the rename is best effort where the platform refuses directory fsync.
        }
    }

    /** Deletes {@code p} and everything below it, if it exists (what another process deletes meanwhile is gone too). */
    public static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (java.util.stream.Stream<Path> walk = Files.walk(p)) {
            for (Path q : (Iterable<Path>) walk.sorted(java.util.Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(q);
            }
        }
    }
}
