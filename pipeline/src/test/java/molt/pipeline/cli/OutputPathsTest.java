package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Output paths that cannot be written are one-line exit-2 errors naming the path, and leave nothing behind. */
class OutputPathsTest {
    @TempDir
    static Path tmp;
    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        model = TinyCheckpoints.builder().vocab(ByteTokenizer.VOCAB).write(tmp.resolve("teacher"));
        new ByteTokenizer().save(model);
    }

    private static void refused(Path out, String expected) throws Exception {
        Path parent = out.toAbsolutePath().getParent();
        long before = Files.isDirectory(parent) ? Files.list(parent).count() : -1;
        CliTestSupport.Run r = CliTestSupport.run("logits", "--model", model.toString(), "--tokens", "5,17",
                "--out", out.toString());
        assertEquals(2, r.exit(), r.err());
        assertEquals(1, r.err().lines().filter(l -> l.startsWith("molt:")).count(), r.err());
        assertTrue(r.err().contains(expected), r.err());
        if (before >= 0) {
            try (Stream<Path> s = Files.list(parent)) {
                assertEquals(before, s.count(), "nothing left beside " + out);
            }
        }
    }

    @Test
    void aDirectoryAsTheOutputFileIsRefused() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("out-dir"));
        refused(dir, "out-dir: --out: is a directory");
        Path nested = Files.createDirectories(tmp.resolve("a/b"));
        refused(nested, "b: --out: is a directory");
    }

    @Test
    void aFileWhereADirectoryShouldBeIsRefused() throws Exception {
        Path file = Files.writeString(tmp.resolve("plain.txt"), "x");
        refused(file.resolve("logits.safetensors"), "plain.txt");
    }

    @Test
    void anUnwritableTargetLeavesNoTemporaryFile() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("target-dir"));
        Path blocker = Files.createDirectories(dir.resolve(".x.safetensors.tmp"));
        Files.writeString(blocker.resolve("keep"), "k");
        CliTestSupport.Run r = CliTestSupport.run("logits", "--model", model.toString(), "--tokens", "5",
                "--out", dir.resolve("x.safetensors").toString());
        assertEquals(2, r.exit(), r.err());
        assertEquals(1, r.err().lines().filter(l -> l.startsWith("molt:")).count(), r.err());
        assertTrue(r.err().contains("x.safetensors: cannot write"), r.err());
        assertTrue(Files.isRegularFile(blocker.resolve("keep")), "a directory molt did not make is left alone");
        assertTrue(!Files.exists(dir.resolve("x.safetensors")));
    }

    @Test
    void onlyCommandsThatTakeTokensSuggestThem() throws Exception {
        Path bare = TinyCheckpoints.builder().vocab(ByteTokenizer.VOCAB).write(tmp.resolve("no-tokenizer"));
        CliTestSupport.Run logits = CliTestSupport.run("logits", "--model", bare.toString(), "--text", "hi",
                "--out", tmp.resolve("l.safetensors").toString());
        assertEquals(2, logits.exit(), logits.err());
        assertTrue(logits.err().contains("has no tokenizer.json; pass token ids with --tokens"), logits.err());
        CliTestSupport.Run gen = CliTestSupport.run("generate", "--model", bare.toString(), "--prompt", "hi");
        assertEquals(2, gen.exit(), gen.err());
        assertTrue(gen.err().contains("--tokens"), gen.err());
        CliTestSupport.Run eval = CliTestSupport.run("eval", "--model", bare.toString(), "--data", "europarl-en");
        assertEquals(2, eval.exit(), eval.err());
        assertTrue(eval.err().contains("has no tokenizer.json") && !eval.err().contains("--tokens"), eval.err());
    }
}
