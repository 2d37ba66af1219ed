package molt.teacher.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import molt.teacher.InputException;

/** SHA-256 digests of bytes, strings, files and file ranges, as lowercase hex. */
public final class Digests {
    private Digests() {
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);
        }
    }

    public static String hex(byte[] bytes) {
        return HexFormat.of().formatHex(sha256().digest(bytes));
    }

    /** The digest accumulated so far, as hex (the digest is reset). */
    public static String hex(MessageDigest md) {
        return HexFormat.of().formatHex(md.digest());
    }

    public static String hex(String text) {
        return hex(text.getBytes(StandardCharsets.UTF_8));
    }

    /** The digest of the files' bytes, one after another. */
    public static String ofFiles(Iterable<Path> files) {
        MessageDigest md = sha256();
        byte[] buf = new byte[1 << 20];
        for (Path f : files) {
            try (InputStream in = Files.newInputStream(f)) {
                int n;
                while ((n = in.read(buf)) > 0) {
                    md.update(buf, 0, n);
                }
            } catch (java.nio.file.NoSuchFileException e) {
                throw new InputException(f, "does not exist");
            } catch (IOException e) {
                throw new InputException(f, "cannot read: " + AtomicFiles.describe(e), e);
            }
        }
        return hex(md);
    }

    /** The digest of bytes [from, end of file) of an open channel. */
    public static String ofRange(Path file, FileChannel ch, long from) {
        MessageDigest md = sha256();
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        try {
            long pos = from;
            int n;
            while ((n = ch.read(buf.clear(), pos)) > 0) {
                md.update(buf.flip());
                pos += n;
            }
        } catch (IOException e) {
            throw new InputException(file, "cannot read: " + AtomicFiles.describe(e), e);
        }
        return hex(md);
    }
}
