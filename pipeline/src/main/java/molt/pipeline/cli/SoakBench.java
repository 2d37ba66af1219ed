package molt.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.run.Runner;
import molt.pipeline.run.StopSignal;
import molt.teacher.LlamaConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code molt bench soak}: a long attention-transfer stage on a small random teacher with a checkpoint (and a
 * validation that may save the best weights) every few steps, reporting the process's resident memory and the
 * live NDArray count along the way. A leak of native or Java memory shows as RSS or array count climbing between
 * the early and the late steps; both should stay flat.
 */
@Command(name = "soak", mixinStandardHelpOptions = true,
        description = "Memory over a long training stage with frequent checkpoints: RSS and live NDArrays by step.")
final class SoakBench implements Callable<Integer> {
    @Option(names = "--steps", defaultValue = "2000", description = "Training steps. Default: ${DEFAULT-VALUE}.")
    int steps;

    @Option(names = "--checkpoint-every", defaultValue = "10", description = "Steps between checkpoints. "
            + "Default: ${DEFAULT-VALUE}.")
    int every;

    @Option(names = "--hidden", defaultValue = "128", description = "Teacher width. Default: ${DEFAULT-VALUE}.")
    int hidden;

    @Option(names = "--layers", defaultValue = "2", description = "Teacher layers. Default: ${DEFAULT-VALUE}.")
    int layers;

    @Option(names = "--early", defaultValue = "200", description = "The step compared with the last. "
            + "Default: ${DEFAULT-VALUE}.")
    int early;

    @Override
    public Integer call() throws Exception {
        if (steps < 2 || early < 1 || early >= steps || every < 1) {
            throw new molt.teacher.InputException("bench soak: expected 1 <= --early < --steps and --checkpoint-every "
                    + ">= 1");
        }
        Path dir = Files.createTempDirectory("molt-bench-soak");
        try {
            LlamaConfig cfg = TrainBench.byteVocabulary(BenchCommand.Teacher.config(hidden, layers));
            Path teacher = TrainBench.writeRandomTeacher(cfg, dir.resolve("teacher"));
            int seqLen = 64;
            Path yaml = Files.writeString(dir.resolve("soak.yaml"), """
                    output_dir: %s
                    teacher: {path: %s}
                    data: {source: europarl-en, seq_len: %d, batch_size: 4}
                    student: {feature_dim: 16, window: 16, chunk_size: 32}
                    checkpoint: {every_steps: %d, keep_last: 2}
                    stages:
                      - {name: transfer, type: attention_transfer, tokens: %d, val_every: %d, val_batches: 1,
                         log_every: 1}
                    """.formatted(dir.resolve("run"), teacher, seqLen, every, (long) steps * 4 * seqLen, every));
            long t0 = System.nanoTime();
            try (StopSignal stop = StopSignal.manual()) {
                Runner.run(ConfigLoader.load(yaml, List.of()), stop);
            }
            report(dir.resolve("run/metrics.jsonl"), (System.nanoTime() - t0) / 1e9);
        } finally {
            try (var s = Files.walk(dir)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        return 0;
    }

    private void report(Path metrics, double seconds) throws Exception {
        List<JsonNode> rows = new ArrayList<>();
        for (JsonNode n : molt.pipeline.run.MetricsLog.records(metrics)) {
            if (n.has("rss_mib") && n.has("step")) {
                rows.add(n);
            }
        }
        System.out.printf("soak: %d attention-transfer steps (hidden %d, %d layers, 4 x 64 tokens), a checkpoint and a "
                + "validation every %d steps, %.0f s%n", steps, hidden, layers, every, seconds);
        System.out.printf("%8s %10s %12s%n", "step", "RSS MiB", "NDArrays");
        JsonNode atEarly = null;
        JsonNode last = rows.get(rows.size() - 1);
        for (JsonNode n : rows) {
            long s = n.path("step").asLong();
            if (s == early) {
                atEarly = n;
            }
            if (s == 1 || s % Math.max(1, steps / 10) == 0 || s == early) {
                System.out.printf("%8d %10.1f %12d%n", s, n.path("rss_mib").asDouble(), n.path("ndarrays").asLong());
            }
        }
        if (atEarly != null) {
            System.out.printf("RSS at step %d minus step %d: %+.1f MiB; NDArrays %d -> %d%n", last.path("step").asLong(),
                    early, last.path("rss_mib").asDouble() - atEarly.path("rss_mib").asDouble(),
                    atEarly.path("ndarrays").asLong(), last.path("ndarrays").asLong());
        }
    }
}
