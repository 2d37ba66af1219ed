package molt.pipeline.train;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import molt.data.PreparedDataset;
import molt.data.SequenceShards;
import molt.data.TeacherTargets;
import molt.data.TopKCache;
import molt.teacher.model.LanguageModel;

/** Computes a teacher's top-k next-token log-probabilities for every sequence of a prepared dataset. */
public final class TopKTargets {
    private TopKTargets() {
    }

    /** Writes {@code topk-<shard>.parquet} beside every shard of both splits; returns the number of sequences. */
    public static long build(LanguageModel teacher, PreparedDataset ds, int k, int batch) throws IOException {
        long rows = 0;
        for (String split : List.of("train", "val")) {
            for (Path shard : ds.shards(split)) {
                List<long[]> seqs = SequenceShards.read(shard);
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
                TopKCache.write(TeacherTargets.fileFor(shard), k, out);
                rows += seqs.size();
            }
        }
        return rows;
    }
}
