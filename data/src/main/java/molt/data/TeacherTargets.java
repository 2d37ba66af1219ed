package molt.data;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import molt.teacher.InputException;

/**
 * Top-k teacher targets stored beside a prepared dataset's shards: for shard {@code train-00000.parquet} the file
 * {@code topk-train-00000.parquet} holds, row for row, the teacher's k most likely next tokens and their
 * log-probabilities at each input position. Files are loaded on demand and kept per shard; each is checked against
 * its {@code .sha256} checksum file when loaded (and must have one to be opened at all).
 */
public final class TeacherTargets {
    private final Map<Path, List<TopKCache.Entry>> loaded = new HashMap<>();
    private final int k;

    public TeacherTargets(PreparedDataset ds, String split) {
        List<Path> shards = ds.shards(split);
        int found = -1;
        for (Path s : shards) {
            Path f = fileFor(s);
            if (!java.nio.file.Files.isRegularFile(f)) {
                throw new InputException(ds.dir(), "has no teacher top-k cache for " + s.getFileName()
                        + " (run 'molt data topk' first)");
            }
            int k = TopKCache.k(f);
            if (found >= 0 && k != found) {
                throw new InputException(f, "k = " + k + ", but other shards have k = " + found);
            }
            found = k;
        }
        this.k = found;
    }

    /** The cache file beside a shard. */
    public static Path fileFor(Path shard) {
        return shard.resolveSibling("topk-" + shard.getFileName());
    }

    public int k() {
        return k;
    }

    /** The cached targets of row {@code row} of {@code shard}, checked against the row's tokens. */
    public TopKCache.Entry entry(Path shard, int row, long[] tokens) {
        List<TopKCache.Entry> rows = loaded.computeIfAbsent(shard, s -> {
            if (loaded.size() > 2) {
                loaded.clear();
            }
            return TopKCache.read(fileFor(s));
        });
        TopKCache.Entry e = rows.get(row);
        if (!java.util.Arrays.equals(e.inputIds(), java.util.Arrays.copyOf(tokens, tokens.length - 1))) {
            throw new InputException(fileFor(shard), "row " + row + " does not match the dataset's tokens (stale cache?)");
        }
        return e;
    }
}
