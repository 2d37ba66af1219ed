package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import molt.data.PreparedDataset;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DataCommandTest {

    @Test
    void preparesTheBuiltInCorpusAndRefusesOtherSettings(@TempDir Path dir) throws Exception {
        Path tok = Files.createDirectories(dir.resolve("tok"));
        new ByteTokenizer().save(tok);
        Path out = dir.resolve("europarl");
        CliTestSupport.Run r = CliTestSupport.run("data", "prepare", "--source", "europarl-en", "--tokenizer",
                tok.toString(), "--seq-len", "256", "--out", out.toString());
        assertEquals(0, r.exit(), r.err());
        PreparedDataset ds = PreparedDataset.open(out);
        assertTrue(ds.sequences("train") > 4000, r.out());
        assertTrue(ds.sequences("val") > 100, r.out());
        assertEquals(0, CliTestSupport.run("data", "prepare", "--source", "europarl-en", "--tokenizer",
                tok.toString(), "--seq-len", "256", "--out", out.toString()).exit(), "same settings: reused");
        CliTestSupport.Run other = CliTestSupport.run("data", "prepare", "--source", "europarl-en", "--tokenizer",
                tok.toString(), "--seq-len", "128", "--out", out.toString());
        assertEquals(2, other.exit());
        assertTrue(other.err().contains("seq_len: prepared with 256, asked for 128"), other.err());
        CliTestSupport.Run missing = CliTestSupport.run("data", "prepare", "--source", dir.resolve("none.parquet")
                .toString(), "--tokenizer", tok.toString(), "--out", dir.resolve("x").toString());
        assertEquals(2, missing.exit());
        assertEquals(1, missing.err().strip().lines().count(), missing.err());
        assertFalse(Files.exists(dir.resolve("x").resolve(PreparedDataset.MANIFEST)));
    }

    @Test
    void topkStoresTeacherTargetsBesideTheShards(@TempDir Path dir) throws Exception {
        Path teacher = molt.pipeline.run.PipelineTestSupport.teacher(dir);
        Path out = dir.resolve("prepared");
        assertEquals(0, CliTestSupport.run("data", "prepare", "--source",
                molt.pipeline.run.PipelineTestSupport.corpus(dir).toString(), "--tokenizer", teacher.toString(),
                "--seq-len", "32", "--out", out.toString(), "--rows-per-shard", "100").exit());
        CliTestSupport.Run r = CliTestSupport.run("data", "topk", "--model", teacher.toString(), "--data", out.toString(),
                "--k", "3");
        assertEquals(0, r.exit(), r.err());
        PreparedDataset ds = PreparedDataset.open(out);
        molt.data.TeacherTargets targets = new molt.data.TeacherTargets(ds, "train");
        assertEquals(3, targets.k());
        Path shard = ds.shards("train").get(0);
        long[] row = molt.data.SequenceShards.read(shard).get(0);
        molt.data.TopKCache.Entry e = targets.entry(shard, 0, row);
        assertEquals(32 * 3, e.topIds().length); // 33-token rows: 32 input positions
        for (int t = 0; t < 32; t++) {
            assertTrue(e.topLogprobs()[t * 3] >= e.topLogprobs()[t * 3 + 1], "sorted by probability");
        }
        assertEquals(2, CliTestSupport.run("data", "topk", "--model", teacher.toString(), "--data", out.toString(),
                "--k", "0").exit());
    }
}
