package molt.pipeline.train;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import molt.data.PreparedDataset;
import molt.data.SequenceShards;
import molt.data.TeacherTargets;
import molt.data.TopKCache;
import molt.teacher.InputException;
import molt.teacher.model.LanguageModel;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/** Computes a teacher's top-k next-token log-probabilities for every sequence of a prepared dataset. */
public final class TopKTargets {
    private static final Logger LOG = LogManager.getLogger(TopKTargets.class);

    private TopKTargets() {
    }

    /**
     * Writes {@code topk-<shard>.parquet} beside every shard of both splits; returns the number of sequences. With
     * {@code keepComplete}, a shard whose file is already complete ({@link #complete}) is kept: for a run's own data,
     * whose teacher the run's config fixes (a file written by another teacher would pass the check).
     */
    public static long build(LanguageModel teacher, PreparedDataset ds, int k, int batch, boolean keepComplete)
            throws IOException {
        long rows = 0;
        for (Path shard : shards(ds)) {
            rows += buildShard(teacher, shard, k, batch, keepComplete);
        }
        return rows;
    }

    /** Every shard of a prepared dataset, train then val, in the order {@link #build} writes their targets. */
    public static List<Path> shards(PreparedDataset ds) {
        List<Path> out = new ArrayList<>(ds.shards("train"));
        out.addAll(ds.shards("val"));
        return out;
    }

    /**
     * Writes one shard's {@code topk-<shard>.parquet} (and its checksum file), unless {@code keepComplete} and it is
     * already complete; returns the shard's number of sequences. The file depends only on the shard, the teacher, k and the batch size, so a
     * shard computed alone (a distributed run's task) is the same bytes as one computed by {@link #build}.
     */
    public static long buildShard(LanguageModel teacher, Path shard, int k, int batch, boolean keepComplete)
            throws IOException {
        List<long[]> seqs = SequenceShards.read(shard);
        Path file = TeacherTargets.fileFor(shard);
        if (keepComplete && complete(file, k)) {
            return seqs.size();
        }
        List<TopKCache.Entry> out = new ArrayList<>();
        for (int i = 0; i < seqs.size(); i += batch) {
            int n = Math.min(batch, seqs.size() - i);
            long[][] in = new long[n][];
            for (int b = 0; b < n; b++) {
                long[] r = seqs.get(i + b);
                in[b] = Arrays.copyOf(r, r.length - 1);
            }
            try (NDManager nd = NDManager.newBaseManager(teacher.device())) {
                NDList top = teacher.logits(nd, in).logSoftmax(-1).topK(k, -1, true, true); // [n, T, k] x 2
                float[] lp = top.get(0).toFloatArray();
                long[] ids = top.get(1).toLongArray();
                int per = in[0].length * k;
                for (int b = 0; b < n; b++) {
                    int[] tid = new int[per];
                    float[] tlp = new float[per];
                    for (int j = 0; j < per; j++) {
                        tid[j] = (int) ids[b * per + j];
                        tlp[j] = lp[b * per + j];
                    }
                    out.add(new TopKCache.Entry(in[b], tid, tlp));
                }
            }
        }
        TopKCache.write(file, k, out);
        return seqs.size();
    }

    /**
     * True when a shard's top-k file exists with its checksum file, its bytes match the checksum and it was written
     * with {@code k}. A damaged or different file is not complete (it is written again).
     */
    public static boolean complete(Path file, int k) {
        if (!Files.isRegularFile(file) || !Files.isRegularFile(TopKCache.checksumFile(file))) {
            return false;
        }
        try {
            TopKCache.verify(file);
            return TopKCache.k(file) == k;
        } catch (InputException e) {
            LOG.warn("{}: {}; computing it again", file, e.getMessage());
            return false;
        }
    }
}
