package molt.data;

import java.nio.file.Files;
import java.nio.file.Path;
import molt.teacher.InputException;

/** Opens a document source from a user's spec: {@code europarl-en}, a .jsonl file, or Parquet (file or folder). */
public final class Sources {
    private Sources() {
    }

    public static DocumentSource open(String spec, String column) {
        return open(spec, column, null);
    }

    /**
     * With {@code responseColumn} non-null, documents are prompt/response pairs from {@code column} (the prompt) and
     * {@code responseColumn}; the loss is then taken on responses only.
     */
    public static DocumentSource open(String spec, String column, String responseColumn) {
        if (spec == null || spec.isBlank()) {
            throw new InputException("data source: expected europarl-en, a .jsonl file, a .parquet file or a folder of shards");
        }
        if (spec.equals(EuroparlCorpus.NAME)) {
            if (responseColumn != null) {
                throw new InputException("data source " + spec + " has no prompt/response columns");
            }
            return new EuroparlCorpus();
        }
        Path p = Path.of(spec);
        if (spec.endsWith(".jsonl") || spec.endsWith(".json")) {
            if (!Files.isRegularFile(p)) {
                throw new InputException(p, "no such file");
            }
            return new JsonlDocuments(p, column, responseColumn);
        }
        return new ParquetDocuments(p, column, responseColumn);
    }
}
