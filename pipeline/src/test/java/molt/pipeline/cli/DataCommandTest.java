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
}
