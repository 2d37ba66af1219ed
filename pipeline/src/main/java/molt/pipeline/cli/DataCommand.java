package molt.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import molt.data.DocumentSource;
import molt.data.PreparedDataset;
import molt.data.Sources;
import molt.data.TopKCache;
import molt.teacher.InputException;
import molt.teacher.tokenizer.TextTokenizer;
import molt.teacher.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code molt data}: dataset preparation. */
@Command(name = "data", mixinStandardHelpOptions = true, description = "Prepare datasets.",
        subcommands = {DataCommand.Prepare.class, DataCommand.TopK.class})
public final class DataCommand implements Runnable {

    @Override
    public void run() {
        new picocli.CommandLine(this).usage(System.out);
    }

    @Command(name = "prepare", mixinStandardHelpOptions = true,
            description = "Tokenize and pack a source into Parquet shards of fixed-length sequences with a manifest; "
                    + "reuses OUT when it was prepared with the same settings, refuses it otherwise. OUT must be new, "
                    + "empty, or a directory molt prepared (an interrupted preparation is redone); it is never the "
                    + "source, inside it, or around it.")
    static final class Prepare implements Callable<Integer> {
        @Option(names = "--source", required = true,
                description = "europarl-en (built in), a .jsonl file, a .parquet file or a folder of .parquet shards.")
        String source;

        @Option(names = "--tokenizer", required = true, description = "Model directory whose tokenizer.json is used.")
        Path tokenizer;

        @Option(names = "--seq-len", defaultValue = "1024", description = "Tokens per sequence. Default: ${DEFAULT-VALUE}.")
        int seqLen;

        @Option(names = "--out", required = true, description = "Output directory.")
        Path out;

        @Option(names = "--column", defaultValue = "text",
                description = "Column (Parquet) or field (JSON Lines) with the text, or input_ids for token ids. "
                        + "Default: ${DEFAULT-VALUE}.")
        String column;

        @Option(names = "--prompt-column", description = "Instruction data: the prompt column/field (with --response-column); "
                + "the loss then covers response tokens only.")
        String promptColumn;

        @Option(names = "--response-column", description = "Instruction data: the response column/field.")
        String responseColumn;

        @Option(names = "--seed", defaultValue = "0", description = "Split seed. Default: ${DEFAULT-VALUE}.")
        long seed;

        @Option(names = "--val-fraction", defaultValue = "0.05",
                description = "Fraction of documents held out for validation. Default: ${DEFAULT-VALUE}.")
        double valFraction;

        @Option(names = "--rows-per-shard", defaultValue = "4096", description = "Sequences per shard. Default: ${DEFAULT-VALUE}.")
        int rowsPerShard;

        @Override
        public Integer call() throws Exception {
            // Everything that can be checked without reading data is checked before anything is loaded or allocated.
            PreparedDataset.checkSizes(seqLen, rowsPerShard, "--seq-len", "--rows-per-shard");
            if (!(valFraction >= 0 && valFraction < 1)) {
                throw new InputException("--val-fraction: expected a fraction in [0, 1), found " + valFraction);
            }
            if ((promptColumn == null) != (responseColumn == null)) {
                throw new InputException("--prompt-column and --response-column go together");
            }
            checkTokenizerDir(tokenizer);
            checkPositions(tokenizer, seqLen);
            TextTokenizer tok = Tokenizers.load(tokenizer);
            try (DocumentSource src = promptColumn == null ? Sources.open(source, column)
                    : Sources.open(source, promptColumn, responseColumn)) {
                PreparedDataset ds = PreparedDataset.prepare(src, tok, seqLen, seed, valFraction, rowsPerShard, out);
                System.out.printf("%s: %d train and %d validation sequences of %d tokens%n", ds.dir(),
                        ds.sequences("train"), ds.sequences("val"), ds.seqLen() + 1);
            }
            return 0;
        }
    }

    /** {@code --tokenizer} names a model directory holding tokenizer.json. */
    static void checkTokenizerDir(Path dir) {
        if (!Files.exists(dir)) {
            throw new InputException(dir, "no such directory (--tokenizer expects a model directory holding "
                    + "tokenizer.json)");
        }
        if (!Files.isDirectory(dir)) {
            throw new InputException(dir, "is a file (--tokenizer expects the model directory holding tokenizer.json)");
        }
        if (!Tokenizers.present(dir)) {
            throw new InputException(dir, "has no tokenizer.json (--tokenizer expects the model directory whose "
                    + "tokenizer.json tokenizes the data)");
        }
    }

    /**
     * When the tokenizer's directory is a model with {@code max_position_embeddings} in config.json, sequences
     * longer than the model reads are refused (a config that cannot be read is left to the commands that load it).
     */
    static void checkPositions(Path modelDir, int seqLen) {
        Path config = modelDir.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            return;
        }
        JsonNode max;
        try {
            max = new ObjectMapper().readTree(Files.readAllBytes(config)).path("max_position_embeddings");
        } catch (IOException | RuntimeException e) {
            return;
        }
        if (max.canConvertToInt() && max.asInt() > 0 && seqLen > max.asInt()) {
            throw new InputException("--seq-len: expected at most " + max.asInt() + " (max_position_embeddings in "
                    + config + ": the model reads no more positions), found " + seqLen);
        }
    }

    @Command(name = "topk", mixinStandardHelpOptions = true,
            description = "Store a teacher's top-k next-token log-probabilities beside a prepared dataset's shards "
                    + "(topk-<shard>.parquet, with its SHA-256 in topk-<shard>.parquet.sha256), so logit distillation can run "
                    + "without the teacher in memory.")
    static final class TopK implements Callable<Integer> {
        @Option(names = "--model", required = true, description = "Teacher model directory.")
        Path model;

        @Option(names = "--data", required = true, description = "Prepared dataset directory.")
        Path data;

        @Option(names = "--k", defaultValue = "16", description = "Tokens kept per position. Default: ${DEFAULT-VALUE}.")
        int k;

        @Option(names = "--batch", defaultValue = "4", description = "Sequences per forward. Default: ${DEFAULT-VALUE}.")
        int batch;

        @Option(names = "--device", defaultValue = "cpu", description = "cpu, gpu, gpu:N or auto.")
        String device;

        @Option(names = "--precision", defaultValue = "f32", description = Models.PRECISION_HELP)
        String precision;

        @Override
        public Integer call() throws Exception {
            if (k < 1) {
                throw new InputException("--k: expected >= 1, found " + k);
            }
            if (batch < 1) {
                throw new InputException("--batch: expected >= 1, found " + batch);
            }
            PreparedDataset ds = PreparedDataset.open(data);
            molt.teacher.LlamaConfig config = Models.config(model);
            int vocab = config.vocabSize();
            if (k > vocab) {
                throw new InputException("--k: expected 1.." + vocab + " (the teacher's vocabulary), found " + k);
            }
            if (ds.vocabSize() > vocab) {
                throw new InputException(data, "was prepared with a tokenizer of " + ds.vocabSize()
                        + " tokens, more than the teacher's vocabulary (" + vocab + " in " + model + ")");
            }
            if (ds.seqLen() > config.maxPositionEmbeddings()) {
                throw new InputException(data, "holds sequences of " + ds.seqLen() + " input positions; the teacher "
                        + "reads at most " + config.maxPositionEmbeddings() + " (max_position_embeddings in " + model + ")");
            }
            // Sizes before anything is allocated: a shard's targets are held in memory, a batch's in Java arrays.
            TopKCache.checkFits(ds.maxShardRows(), ds.seqLen(), k, "--k");
            long perForward = (long) batch * ds.seqLen() * k;
            if (perForward > Integer.MAX_VALUE - 8) {
                throw new InputException("--batch: expected at most " + (Integer.MAX_VALUE - 8L) / ((long) ds.seqLen() * k)
                        + " (sequences x " + ds.seqLen() + " positions x k " + k + " must fit in one array), found " + batch);
            }
            long rows;
            try (molt.teacher.model.LanguageModel m = Models.load(model, device, precision)) {
                rows = molt.pipeline.train.TopKTargets.build(m, ds, k, batch, false);
            }
            System.out.printf("%s: top-%d teacher targets for %d sequences%n", ds.dir(), k, rows);
            return 0;
        }
    }
}
