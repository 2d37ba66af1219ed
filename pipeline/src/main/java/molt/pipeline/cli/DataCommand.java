package molt.pipeline.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import molt.data.DocumentSource;
import molt.data.PreparedDataset;
import molt.data.Sources;
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
                    + "reuses OUT when it was prepared with the same settings, refuses it otherwise.")
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
            if (rowsPerShard < 1) {
                throw new InputException("--rows-per-shard: expected >= 1, found " + rowsPerShard);
            }
            TextTokenizer tok = Tokenizers.load(tokenizer);
            new PreparedDataset.Spec("", "", seqLen, seed, valFraction);
            if ((promptColumn == null) != (responseColumn == null)) {
                throw new InputException("--prompt-column and --response-column go together");
            }
            try (DocumentSource src = promptColumn == null ? Sources.open(source, column)
                    : Sources.open(source, promptColumn, responseColumn)) {
                PreparedDataset ds = PreparedDataset.prepare(src, tok, seqLen, seed, valFraction, rowsPerShard, out);
                System.out.printf("%s: %d train and %d validation sequences of %d tokens%n", ds.dir(),
                        ds.sequences("train"), ds.sequences("val"), ds.seqLen() + 1);
            }
            return 0;
        }
    }

    @Command(name = "topk", mixinStandardHelpOptions = true,
            description = "Store a teacher's top-k next-token log-probabilities beside a prepared dataset's shards "
                    + "(topk-<shard>.parquet), so logit distillation can run without the teacher in memory.")
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

        @Override
        public Integer call() throws Exception {
            PreparedDataset ds = PreparedDataset.open(data);
            int vocab = Models.config(model).vocabSize();
            if (k < 1 || k > vocab) {
                throw new InputException("--k: expected 1.." + vocab + ", found " + k);
            }
            if (batch < 1) {
                throw new InputException("--batch: expected >= 1, found " + batch);
            }
            long rows;
            try (molt.teacher.model.LanguageModel m = Models.load(model, device)) {
                rows = molt.pipeline.train.TopKTargets.build(m, ds, k, batch);
            }
            System.out.printf("%s: top-%d teacher targets for %d sequences%n", ds.dir(), k, rows);
            return 0;
        }
    }
}
