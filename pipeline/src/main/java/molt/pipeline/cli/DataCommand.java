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
        subcommands = {DataCommand.Prepare.class})
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
            try (DocumentSource src = Sources.open(source, column)) {
                PreparedDataset ds = PreparedDataset.prepare(src, tok, seqLen, seed, valFraction, rowsPerShard, out);
                System.out.printf("%s: %d train and %d validation sequences of %d tokens%n", ds.dir(),
                        ds.sequences("train"), ds.sequences("val"), ds.seqLen() + 1);
            }
            return 0;
        }
    }
}
