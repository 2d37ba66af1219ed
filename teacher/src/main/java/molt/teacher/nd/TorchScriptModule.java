package molt.teacher.nd;

import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.JniUtils;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * A parameter-free TorchScript module written by molt itself, without Python: libtorch compiles the module's source
 * when it loads the archive, which gives DJL access to ops it has no binding for (such as
 * {@code scaled_dot_product_attention}).
 *
 * <p>The archive is TorchScript's serialization format reduced to what a module without parameters or tensor
 * constants needs: {@code NAME/version}, {@code NAME/code/__torch__.py} (the class's source), {@code NAME/data.pkl}
 * (the module object: a pickle of class {@code __torch__.NAME} whose state is {@code {"training": False}}) and
 * {@code NAME/constants.pkl} (an empty tuple), stored uncompressed.
 */
final class TorchScriptModule {
    /**
     * The archive's format version. Loaders apply upgraders to ops whose meaning changed after the version a file
     * declares; 8 postdates every change to the ops molt's modules use.
     */
    static final String VERSION = "8";

    private TorchScriptModule() {
    }

    /** Loads module {@code name} (a Python identifier) whose class body is {@code body}; it lives on CPU. */
    static PtSymbolBlock load(PtNDManager manager, String name, String body) {
        try {
            return JniUtils.loadModule(manager, new ByteArrayInputStream(archive(name, body)), false, false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The archive's bytes for class {@code name} with the class body {@code body} (indented by two spaces). */
    static byte[] archive(String name, String body) throws IOException {
        if (!name.matches("[A-Za-z_][A-Za-z0-9_]*")) {
            throw new IllegalArgumentException("a module name must be a Python identifier, found '" + name + "'");
        }
        String source = "class " + name + "(Module):\n"
                + "  __parameters__ = []\n"
                + "  __buffers__ = []\n"
                + "  training : bool\n"
                + body;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
            stored(zip, name + "/version", (VERSION + "\n").getBytes(StandardCharsets.US_ASCII));
            stored(zip, name + "/code/__torch__.py", source.getBytes(StandardCharsets.UTF_8));
            stored(zip, name + "/data.pkl", moduleObject(name));
            stored(zip, name + "/constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'}); // protocol 2, (), stop
        }
        return bytes.toByteArray();
    }

    /** A pickle (protocol 2) of a {@code __torch__.NAME} object whose state is {@code {"training": False}}. */
    private static byte[] moduleObject(String name) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.write(0x80); // PROTO
        o.write(2);
        o.writeBytes(("c__torch__\n" + name + "\n").getBytes(StandardCharsets.US_ASCII)); // GLOBAL module name
        o.write(')'); // EMPTY_TUPLE: no constructor arguments
        o.write(0x81); // NEWOBJ
        o.write('}'); // EMPTY_DICT: the state
        o.write('('); // MARK
        byte[] key = "training".getBytes(StandardCharsets.US_ASCII);
        o.write('X'); // BINUNICODE, 4-byte little-endian length
        o.write(key.length);
        o.write(0);
        o.write(0);
        o.write(0);
        o.writeBytes(key);
        o.write(0x89); // NEWFALSE
        o.write('u'); // SETITEMS
        o.write('b'); // BUILD: the object takes the state
        o.write('.'); // STOP
        return o.toByteArray();
    }

    private static void stored(ZipOutputStream zip, String name, byte[] data) throws IOException {
        ZipEntry e = new ZipEntry(name);
        e.setMethod(ZipEntry.STORED);
        e.setSize(data.length);
        CRC32 crc = new CRC32();
        crc.update(data);
        e.setCrc(crc.getValue());
        zip.putNextEntry(e);
        zip.write(data);
        zip.closeEntry();
    }
}
