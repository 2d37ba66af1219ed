package molt.pipeline.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import molt.data.DocumentSource;
import molt.data.PreparedDataset;
import molt.data.Sources;
import molt.pipeline.eval.Evaluator;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.model.LanguageModel;
import molt.teacher.tokenizer.TextTokenizer;
import molt.teacher.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code molt eval}: perplexity, recall and decoding cost of any teacher or student directory. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Evaluate a teacher or student: held-out perplexity, repeated-span recall at several distances, "
                + "decode tokens/s and state bytes at several context lengths.")
public final class EvalCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "Model directory (teacher or exported student).")
    Path model;

    @Option(names = "--data", required = true,
            description = "A prepared dataset directory (its validation split is used) or a source (europarl-en, "
                    + ".parquet, folder, .jsonl) prepared on the fly with the model's tokenizer.")
    String data;

    @Option(names = "--seq-len", defaultValue = "256", description = "Sequence length when preparing. Default: ${DEFAULT-VALUE}.")
    int seqLen;

    @Option(names = "--sequences", defaultValue = "8", description = "Held-out sequences for perplexity. Default: ${DEFAULT-VALUE}.")
    int sequences;

    @Option(names = "--distances", split = ",", defaultValue = "64,128,256",
            description = "Recall-probe distances in tokens. Default: ${DEFAULT-VALUE}.")
    List<Integer> distances;

    @Option(names = "--probes", defaultValue = "4", description = "Probes per distance. Default: ${DEFAULT-VALUE}.")
    int probes;

    @Option(names = "--contexts", split = ",", defaultValue = "256,1024",
            description = "Context lengths for decoding speed and state size. Default: ${DEFAULT-VALUE}.")
    List<Integer> contexts;

    @Option(names = "--out", description = "Also write the results as JSON here.")
    Path out;

    @Option(names = "--threads", description = "Intra-op threads for the decoding measurement. Default: the decoding "
            + "rule for the model's size (logged).")
    Integer threads;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu, gpu, gpu:N or auto.")
    String device;

    @Option(names = "--precision", defaultValue = "f32", description = Models.PRECISION_HELP)
    String precision;

    @Override
    public Integer call() throws Exception {
        if (threads != null && threads < 1) {
            throw new InputException("--threads: expected >= 1, found " + threads);
        }
        if (sequences < 1 || probes < 1 || distances.stream().anyMatch(d -> d < 16) || contexts.stream().anyMatch(c -> c < 1)) {
            throw new InputException("eval: --sequences and --probes must be >= 1, distances >= 16, contexts >= 1");
        }
        Evaluator.Settings settings = new Evaluator.Settings(sequences, distances, probes, 12, contexts, 64);
        settings.checkFits(Models.config(model));
        TextTokenizer tok = Tokenizers.load(model);
        Path tmp = null;
        PreparedDataset ds;
        Path dataDir = Path.of(data);
        if (Files.isRegularFile(dataDir.resolve(PreparedDataset.MANIFEST))) {
            ds = PreparedDataset.open(dataDir);
            if (!ds.manifest().path("tokenizer").asText().equals(tok.identity())) {
                throw new InputException(dataDir, "was prepared with another tokenizer than " + model + "'s");
            }
        } else {
            tmp = Files.createTempDirectory("molt-eval");
            try (DocumentSource src = Sources.open(data, "text")) {
                ds = PreparedDataset.prepare(src, tok, seqLen, 0, 0.05, 4096, tmp.resolve("data"));
            }
        }
        try (LanguageModel m = Models.load(model, device, precision)) {
            ObjectNode r = Evaluator.evaluate(m, tok, ds, settings, threads);
            Map<String, ObjectNode> rows = Map.of(model.getFileName().toString(), r);
            System.out.print(Evaluator.table(rows, java.util.List.of()) + "\n" + Evaluator.decodeTable(rows));
            if (out != null) {
                AtomicFiles.writeString(out, new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(r));
            }
        } finally {
            if (tmp != null) {
                try (var s = Files.walk(tmp)) {
                    s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
        }
        return 0;
    }
}
