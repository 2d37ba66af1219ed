package molt.data;

import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import molt.teacher.InputException;

/**
 * Batches of packed sequences from one split of a prepared dataset, in a deterministic shuffled order: each epoch
 * permutes the shards, and each shard's rows, with generators seeded from (seed, epoch, shard). Memory holds one
 * shard. {@link #position()} and {@link #seek} save and restore the exact place, so a restarted stage sees exactly
 * the batches an uninterrupted run would have seen. Each shard's SHA-256 is checked against the manifest every time
 * it is loaded.
 */
public final class BatchReader {
    /** A place in the stream: epoch, index into the epoch's shard order, row index into the shard's row order. */
    public record Position(long epoch, int shard, int row) {
    }

    private final PreparedDataset dataset;
    private final List<Path> shards;
    private final int batchSize;
    private final long seed;
    private long epoch;
    private int shardCursor;
    private int rowCursor;
    private int[] shardOrder;
    private List<long[]> rows;
    private List<long[]> masks;
    private int[] rowOrder;

    public BatchReader(PreparedDataset dataset, String split, int batchSize, long seed) {
        this.dataset = dataset;
        this.shards = dataset.shards(split);
        this.batchSize = batchSize;
        this.seed = seed;
        if (shards.isEmpty()) {
            throw new InputException(dataset.dir(), "has no " + split + " sequences");
        }
        if (batchSize < 1) {
            throw new InputException("batch size must be >= 1, found " + batchSize);
        }
        seek(new Position(0, 0, 0));
    }

    private static int[] permutation(int n, long seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        Random r = new Random(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    public Position position() {
        return new Position(epoch, shardCursor, rowCursor);
    }

    /** Moves to a saved position. */
    public void seek(Position p) {
        epoch = p.epoch();
        shardOrder = permutation(shards.size(), seed * 1_000_003L + epoch);
        if (p.shard() < 0 || p.shard() >= shards.size()) {
            throw new InputException("data position: shard " + p.shard() + " is out of range [0, " + shards.size() + ")");
        }
        shardCursor = p.shard();
        loadShard();
        if (p.row() < 0 || p.row() > rows.size()) {
            throw new InputException("data position: row " + p.row() + " is out of range [0, " + rows.size() + "]");
        }
        rowCursor = p.row();
    }

    private void loadShard() {
        int shard = shardOrder[shardCursor];
        Path file = shards.get(shard);
        dataset.verify(file); // once per load: the columns below are read from the checked file
        rows = SequenceShards.readColumn(file, SequenceShards.COLUMN);
        masks = dataset.masked() ? SequenceShards.readColumn(file, SequenceShards.MASK) : null;
        rowOrder = permutation(rows.size(), (seed * 1_000_003L + epoch) * 31 + shard);
    }

    /**
     * A batch, its loss masks (null unless the dataset has prompt/response data; 1 marks tokens to learn) and
     * where its rows come from: the shard file and each row's index in it.
     */
    public record Batch(long[][] rows, long[][] masks, Path[] shards, int[] rowIndices) {
        /** The same batch (origins and masks) with other token rows of the same shapes. */
        public Batch withRows(long[][] other) {
            return new Batch(other, masks, shards, rowIndices);
        }
    }

    /** The next batch [batchSize][seqLen + 1], wrapping into the next epoch at the end of the split. */
    public long[][] next() {
        return nextBatch().rows();
    }

    /** The next batch with the origin of each row (for caches aligned with the shards, such as top-k targets). */
    public Batch nextBatch() {
        long[][] batch = new long[batchSize][];
        Path[] from = new Path[batchSize];
        int[] index = new int[batchSize];
        long[][] mask = dataset.masked() ? new long[batchSize][] : null;
        for (int b = 0; b < batchSize; b++) {
            while (rowCursor >= rows.size()) {
                shardCursor++;
                if (shardCursor == shards.size()) {
                    epoch++;
                    shardCursor = 0;
                    shardOrder = permutation(shards.size(), seed * 1_000_003L + epoch);
                }
                rowCursor = 0;
                loadShard();
            }
            from[b] = shards.get(shardOrder[shardCursor]);
            index[b] = rowOrder[rowCursor];
            if (mask != null) {
                mask[b] = masks.get(rowOrder[rowCursor]);
            }
            batch[b] = rows.get(rowOrder[rowCursor++]);
        }
        return new Batch(batch, mask, from, index);
    }

    public long epoch() {
        return epoch;
    }

    public PreparedDataset dataset() {
        return dataset;
    }
}
