package molt.data;

import java.nio.file.Files;
import java.nio.file.Path;
import molt.teacher.InputException;

/** Opens a document source from a user's spec: {@code europarl-en}, a .jsonl file, or Parquet (file or folder). */
public final class Sources {
    private Sources() {
    }

    public static DocumentSource open(String spec, String column) {
        if (spec == null || spec.isBlank()) {
            throw new InputException("data source: expected europarl-en, a .jsonl file, a .parquet file or a folder of shards");
        }
        if (spec.equals(EuroparlCorpus.NAME)) {
            return new EuroparlCorpus();
        }
        Path p = Path.of(spec);
        if (spec.endsWith(".jsonl") || spec.endsWith(".json")) {
            if (!Files.isRegularFile(p)) {
                throw new InputException(p, "no such file");
            }
            return new JsonlDocuments(p, column);
        }
        return new ParquetDocuments(p, column);
    }
}
