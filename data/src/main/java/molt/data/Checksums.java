package molt.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.Digests;

/**
 * SHA-256 digests of the files molt writes and reads back (prepared shards, top-k caches). A file is hashed in one
 * streaming pass (memory holds one buffer), and every read of a file molt wrote first checks its digest, so a file
 * that changed after molt wrote it (a bad disk, a partial copy, an edit) is refused, naming the file and both
 * digests, instead of being trained on.
 */
public final class Checksums {
    /** A SHA-256 digest in lower-case hex. */
    public static final Pattern SHA256_HEX = Pattern.compile("[0-9a-f]{64}");

    private Checksums() {
    }

    /** The SHA-256 of a file's bytes, lower-case hex; a file that cannot be read is an {@link InputException}. */
    public static String sha256(Path file) {
        return Digests.ofFiles(List.of(file));
    }

    /**
     * Checks that {@code file} has the digest {@code expected}; otherwise an {@link InputException} naming the file,
     * the expected and the found digest, and what to do ({@code remedy}).
     */
    public static void verify(Path file, String expected, String remedy) {
        String found = sha256(file);
        if (!found.equals(expected)) {
            throw new InputException(file, "checksum mismatch: expected sha256 " + expected + ", found " + found
                    + " (the file changed after molt wrote it; " + remedy + ")");
        }
    }

    /** True when {@code s} is a lower-case hex SHA-256. */
    static boolean isSha256(String s) {
        return s != null && SHA256_HEX.matcher(s).matches();
    }

    /** Size of a file in bytes, as an {@link InputException} naming it when it cannot be read. */
    static long size(Path file) {
        try {
            return Files.size(file);
        } catch (NoSuchFileException e) {
            throw new InputException(file, "does not exist");
        } catch (IOException e) {
            throw new InputException(file, "cannot read: " + AtomicFiles.describe(e), e);
        }
    }
}
