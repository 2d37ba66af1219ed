package molt.teacher.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import molt.teacher.InputException;

/** Finds a model directory's tokenizer. */
public final class Tokenizers {
    private Tokenizers() {
    }

    /** True when {@code DIR/tokenizer.json} exists. */
    public static boolean present(Path modelDir) {
        return Files.isRegularFile(modelDir.resolve("tokenizer.json"));
    }

    /**
     * Loads {@code DIR/tokenizer.json}: molt's byte tokenizer when the file is one molt wrote, otherwise through
     * Hugging Face tokenizers.
     */
    public static TextTokenizer load(Path modelDir) {
        Path file = modelDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new InputException(modelDir, "has no tokenizer.json (text cannot be turned into token ids without one)");
        }
        ByteTokenizer bytes = new ByteTokenizer();
        try {
            if (Files.size(file) < 1 << 20 && bytes.tokenizerJson().equals(Files.readString(file))) {
                return bytes;
            }
        } catch (IOException e) {
            throw new InputException(file, "cannot read: " + e.getMessage());
        }
        return HfTokenizer.load(file);
    }
}
