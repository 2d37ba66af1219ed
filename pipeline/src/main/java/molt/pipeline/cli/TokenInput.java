package molt.pipeline.cli;

import java.nio.file.Path;
import molt.teacher.InputException;
import molt.teacher.tokenizer.TextTokenizer;
import molt.teacher.tokenizer.Tokenizers;

/** Token ids from {@code --tokens 5,17,3} or from {@code --text} through the model's tokenizer. */
final class TokenInput {
    private TokenInput() {
    }

    static long[] parse(String csv, int vocab) {
        String[] parts = csv.split(",", -1);
        long[] ids = new long[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].trim();
            try {
                ids[i] = Long.parseLong(p);
            } catch (NumberFormatException e) {
                throw new InputException("--tokens: expected comma-separated integer ids, found '" + p + "' at position " + i);
            }
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new InputException("--tokens: id " + ids[i] + " at position " + i + " is outside the vocabulary [0, "
                        + vocab + ")");
            }
        }
        return ids;
    }

    /** Exactly one of tokens and text must be given. */
    static long[] resolve(String tokens, String text, Path modelDir, int vocab) {
        if ((tokens == null) == (text == null)) {
            throw new InputException("give exactly one of --tokens and --text");
        }
        if (tokens != null) {
            return parse(tokens, vocab);
        }
        if (!Tokenizers.present(modelDir)) {
            throw new InputException(modelDir, "has no tokenizer.json; pass token ids with --tokens instead of text");
        }
        TextTokenizer tok = Tokenizers.load(modelDir);
        long[] ids = tok.encode(text, true);
        if (ids.length == 0) {
            throw new InputException("--text: encodes to no tokens");
        }
        for (long id : ids) {
            if (id < 0 || id >= vocab) {
                throw new InputException(modelDir.resolve("tokenizer.json"), "produced id " + id
                        + ", outside the model's vocabulary [0, " + vocab + ")");
            }
        }
        return ids;
    }
}
