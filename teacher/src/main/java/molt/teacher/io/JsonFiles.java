package molt.teacher.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import molt.teacher.InputException;

/**
 * Reads the JSON files molt keeps beside its outputs (run state, checkpoint indexes, results, configs). A file that
 * is missing, unreadable, not JSON or not an object is an {@link InputException} naming it, never a Jackson
 * exception: a damaged run directory is the user's input too.
 */
public final class JsonFiles {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonFiles() {
    }

    /** The JSON object in {@code file}. */
    public static ObjectNode readObject(Path file) {
        JsonNode n = read(file);
        if (!n.isObject()) {
            throw new InputException(file, "expected a JSON object, found " + n.getNodeType().name().toLowerCase()
                    + " (damaged? delete it or the directory holding it)");
        }
        return (ObjectNode) n;
    }

    /** The JSON object in {@code file}, or an empty object when there is no such file. */
    public static ObjectNode readObjectOrEmpty(Path file) {
        return Files.exists(file) ? readObject(file) : JSON.createObjectNode();
    }

    /** The JSON value in {@code file}. */
    public static JsonNode read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new InputException(file, "does not exist");
        } catch (IOException e) {
            throw new InputException(file, "cannot read: " + JsonErrors.describe(e), e);
        }
        try {
            JsonNode n = JSON.readTree(bytes);
            if (n == null || n.isMissingNode()) {
                throw new InputException(file, "is empty (damaged? delete it or the directory holding it)");
            }
            return n;
        } catch (IOException e) {
            throw new InputException(file, "is not valid JSON: " + JsonErrors.describe(e)
                    + " (damaged? delete it or the directory holding it)");
        }
    }
}
