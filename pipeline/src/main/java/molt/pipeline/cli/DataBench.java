package molt.pipeline.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import molt.data.BatchReader;
import molt.data.EuroparlCorpus;
import molt.data.PreparedDataset;
import molt.teacher.tokenizer.ByteTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code molt bench data}: tokenize+pack rate and the read rate of prepared shards, on the built-in corpus. */
@Command(name = "data", mixinStandardHelpOptions = true,
        description = "Tokenize+pack tokens/s (Europarl, byte tokenizer) and prepared-shard read tokens/s.")
final class DataBench implements Callable<Integer> {
    @Option(names = "--seq-len", defaultValue = "1024") int seqLen;

    @Override
    public Integer call() throws Exception {
        Path dir = Files.createTempDirectory("molt-bench-data");
        try {
            long t0 = System.nanoTime();
            PreparedDataset ds;
            try (EuroparlCorpus src = new EuroparlCorpus()) {
                ds = PreparedDataset.prepare(src, new ByteTokenizer(), seqLen, 0, 0.05, 256, dir.resolve("p"));
            }
            double prepSec = (System.nanoTime() - t0) / 1e9;
            long tokens = ds.manifest().path("splits").path("train").path("tokens").asLong()
                    + ds.manifest().path("splits").path("val").path("tokens").asLong();
            long rows = ds.sequences("train");
            BatchReader r = new BatchReader(ds, "train", 1, 0);
            long t1 = System.nanoTime();
            for (long i = 0; i < rows; i++) {
                r.next();
            }
            double readSec = (System.nanoTime() - t1) / 1e9;
            double gemm = BenchCommand.gemmGflops(ai.djl.Device.cpu(), 1024, 3);
            System.out.printf("fp32 GEMM (same run): %.1f GFLOP/s%n", gemm);
            System.out.printf("tokenize+pack+write: %,d tokens in %.2f s = %,.0f tokens/s%n", tokens, prepSec, tokens / prepSec);
            System.out.printf("read prepared shards: %,d sequences (%,d tokens) in %.2f s = %,.0f tokens/s%n", rows,
                    rows * (seqLen + 1), readSec, rows * (seqLen + 1) / readSec);
        } finally {
            try (var s = Files.walk(dir)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        return 0;
    }
}
