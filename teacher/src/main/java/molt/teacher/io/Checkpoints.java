package molt.teacher.io;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import molt.teacher.InputException;

/** Finds and opens the weights of a Hugging Face model directory, single-file or sharded. */
public final class Checkpoints {
    public static final String SINGLE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";

    private Checkpoints() {
    }

    /** Opens {@code DIR/model.safetensors}, or the shards listed by {@code DIR/model.safetensors.index.json}. */
    public static WeightSource open(Path modelDir) {
        Path single = modelDir.resolve(SINGLE);
        if (Files.isRegularFile(single)) {
            return SafetensorsFile.open(single);
        }
        Path index = modelDir.resolve(INDEX);
        if (Files.isRegularFile(index)) {
            return ShardedWeights.open(index);
        }
        if (!Files.isDirectory(modelDir)) {
            throw new InputException(modelDir, "not a directory");
        }
        throw new InputException(modelDir, "no weights: expected " + SINGLE + " or " + INDEX);
    }

    /** The weight files of a model directory: the single file, or the index followed by its shards. */
    public static List<Path> weightFiles(Path modelDir) {
        Path single = modelDir.resolve(SINGLE);
        if (Files.isRegularFile(single)) {
            return List.of(single);
        }
        try (ShardedWeights w = ShardedWeights.open(modelDir.resolve(INDEX))) {
            List<Path> files = new ArrayList<>();
            files.add(modelDir.resolve(INDEX));
            files.addAll(w.files());
            return files;
        }
    }

    /**
     * SHA-256 over the weight files' bytes, in {@link #weightFiles} order: the identity of a base model that a
     * student checkpoint refers to.
     */
    public static String weightsSha256(Path modelDir) {
        return Digests.ofFiles(weightFiles(modelDir));
    }
}
