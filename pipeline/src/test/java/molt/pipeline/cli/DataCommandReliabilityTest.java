package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import molt.data.Checksums;
import molt.data.PreparedDataset;
import molt.data.SequenceShards;
import molt.pipeline.run.PipelineTestSupport;
import molt.teacher.tokenizer.ByteTokenizer;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code molt data}: bad directories, damaged files and impossible sizes are one-line exit-2 errors. */
class DataCommandReliabilityTest {

    private static Map<String, String> snapshot(Path dir) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.toList()) {
                out.put(dir.relativize(p).toString(), Files.isDirectory(p) ? "dir" : Checksums.sha256(p));
            }
        }
        return out;
    }

    /** Runs molt and expects exit 2 with one line on stderr holding every fragment. */
    private static String refused(List<String> args, String... fragments) {
        CliTestSupport.Run r = CliTestSupport.run(args.toArray(String[]::new));
        assertEquals(2, r.exit(), args + "\n" + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        for (String f : fragments) {
            assertTrue(r.err().contains(f), "'" + f + "' in: " + r.err());
        }
        return r.err();
    }

    private static List<String> prepare(Path tok, Object source, Path out, String... more) {
        List<String> a = new ArrayList<>(List.of("data", "prepare", "--source", source.toString(), "--tokenizer",
                tok.toString(), "--out", out.toString()));
        a.addAll(List.of(more));
        if (!a.contains("--seq-len")) {
            a.addAll(List.of("--seq-len", "32"));
        }
        return a;
    }

    private static Path byteTokenizer(Path dir) throws IOException {
        Path tok = Files.createDirectories(dir.resolve("tok"));
        new ByteTokenizer().save(tok);
        return tok;
    }

    @Test
    void prepareRefusesDirectoriesItDidNotWriteAndLeavesThemIntact(@TempDir Path dir) throws Exception {
        Path tok = byteTokenizer(dir);
        Path corpus = PipelineTestSupport.corpus(dir);
        // A user's directory holding a train-00000.parquet of their own.
        Path user = Files.createDirectories(dir.resolve("user"));
        Files.writeString(user.resolve("train-00000.parquet"), "the user's own data, not molt's");
        // A folder of token-id shards given as both --source and --out.
        Path ids = Files.createDirectories(dir.resolve("ids"));
        List<long[]> rows = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            rows.add(new long[] {65 + i % 26, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82});
        }
        SequenceShards.write(ids.resolve("part-00000.parquet"), rows, CompressionCodecName.SNAPPY);
        // An unrelated non-empty directory.
        Path unrelated = Files.createDirectories(dir.resolve("unrelated"));
        Files.writeString(unrelated.resolve("thesis.tex"), "\\documentclass{article}");

        for (Path d : List.of(user, ids, unrelated)) {
            Map<String, String> before = snapshot(d);
            List<String> args = d == ids ? prepare(tok, ids, ids, "--column", "input_ids") : prepare(tok, corpus, d);
            String err = refused(args, d.toString());
            assertFalse(err.contains("Exception"), err);
            assertEquals(before, snapshot(d), d + " is left byte for byte as it was");
        }
        // Output inside the source folder, or around the source file.
        Map<String, String> before = snapshot(ids);
        refused(prepare(tok, ids, ids.resolve("prepared"), "--column", "input_ids"), "is inside the data source");
        assertEquals(before, snapshot(ids));
        Path texts = Files.createDirectories(dir.resolve("texts"));
        Path inside = Files.copy(corpus, texts.resolve("corpus.jsonl"));
        refused(prepare(tok, inside, texts), "holds the data source");
        // The same folder of ids prepares fine into a new directory.
        CliTestSupport.Run fine = CliTestSupport.run(prepare(tok, ids, dir.resolve("fine"), "--column", "input_ids")
                .toArray(String[]::new));
        assertEquals(0, fine.exit(), fine.err());
    }

    @Test
    void sizesAndOptionsAreCheckedBeforeAnythingIsLoadedOrWritten(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir); // max_position_embeddings 4096
        Path corpus = PipelineTestSupport.corpus(dir);
        Path out = dir.resolve("out");
        refused(prepare(teacher, corpus, out, "--seq-len", "2000000000"), "--seq-len: expected 1..1048576",
                "found 2000000000");
        refused(prepare(teacher, corpus, out, "--seq-len", "0"), "--seq-len");
        refused(prepare(teacher, corpus, out, "--rows-per-shard", "0"), "--rows-per-shard: expected >= 1");
        refused(prepare(teacher, corpus, out, "--seq-len", "1048576", "--rows-per-shard", "4096"),
                "--rows-per-shard 4096 x --seq-len 1048576", "use --rows-per-shard <= ");
        refused(prepare(teacher, corpus, out, "--seq-len", "8192"), "--seq-len: expected at most 4096",
                "max_position_embeddings");
        refused(prepare(teacher, corpus, out, "--val-fraction", "1.5"), "--val-fraction");
        assertFalse(Files.exists(out), "nothing was written");
        // --tokenizer: a directory without tokenizer.json, a missing one; the message offers no option it lacks.
        Path empty = Files.createDirectories(dir.resolve("no-tokenizer"));
        String err = refused(prepare(empty, corpus, out), empty.toString(), "has no tokenizer.json");
        assertFalse(err.contains("--tokens"), err);
        refused(prepare(dir.resolve("missing"), corpus, out), "no such directory");
        assertFalse(Files.exists(out));
        // topk: k against the teacher's vocabulary, batch and k against memory, checked before the model loads.
        Path data = dir.resolve("prepared");
        assertEquals(0, CliTestSupport.run(prepare(teacher, corpus, data, "--rows-per-shard", "100")
                .toArray(String[]::new)).exit());
        List<String> topk = List.of("data", "topk", "--model", teacher.toString(), "--data", data.toString());
        refused(concat(topk, "--k", "100000"), "--k: expected 1..258");
        refused(concat(topk, "--k", "0"), "--k: expected >= 1");
        refused(concat(topk, "--batch", "0"), "--batch");
        refused(concat(topk, "--k", "200", "--batch", "2000000"), "--batch: expected at most");
        try (Stream<Path> s = Files.list(data)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith("topk-")), "no cache was written");
        }
    }

    private static List<String> concat(List<String> a, String... b) {
        List<String> out = new ArrayList<>(a);
        out.addAll(List.of(b));
        return out;
    }

    @Test
    void damagedOrMisplacedInputsAreNamedForWhatTheyAre(@TempDir Path dir) throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path corpus = PipelineTestSupport.corpus(dir);
        Path data = dir.resolve("prepared");
        assertEquals(0, CliTestSupport.run(prepare(teacher, corpus, data, "--rows-per-shard", "40")
                .toArray(String[]::new)).exit());
        // A prepared dataset given as a source.
        refused(prepare(teacher, data, dir.resolve("again")), data.toString(), "is a dataset molt prepared");
        // A line that is not UTF-8, reported with its file and line.
        byte[] good = Files.readAllBytes(corpus);
        Path latin1 = dir.resolve("latin1.jsonl");
        Files.write(latin1, concatBytes(good, "{\"text\": \"caf".getBytes(), new byte[] {(byte) 0xE9},
                "\"}\n".getBytes()));
        refused(prepare(teacher, latin1, dir.resolve("l")), latin1 + ":121: not valid UTF-8");
        // A tampered shard is refused by the reader that meets it (here data topk), naming both digests.
        PreparedDataset ds = PreparedDataset.open(data);
        PreparedDataset.Shard shard = ds.shardFiles("train").get(1);
        byte[] b = Files.readAllBytes(shard.path());
        b[b.length / 2] ^= 0x5A;
        Files.write(shard.path(), b);
        refused(List.of("data", "topk", "--model", teacher.toString(), "--data", data.toString(), "--k", "2"),
                shard.path().toString(), "checksum mismatch", shard.sha256(), Checksums.sha256(shard.path()));
        // An interrupted preparation is reported as one, by topk and as a source; prepare redoes it.
        Files.delete(data.resolve(PreparedDataset.MANIFEST));
        refused(List.of("data", "topk", "--model", teacher.toString(), "--data", data.toString()),
                "interrupted or incomplete preparation");
        refused(prepare(teacher, data, dir.resolve("again")), "interrupted or incomplete preparation");
        assertEquals(0, CliTestSupport.run(prepare(teacher, corpus, data, "--rows-per-shard", "40")
                .toArray(String[]::new)).exit());
        assertEquals(ds.shardFiles("train").get(1).sha256(), Checksums.sha256(shard.path()), "rewritten as before");
        // A manifest claiming format 1 (an older molt) whose shard entries are not file names is refused.
        Path mf = data.resolve(PreparedDataset.MANIFEST);
        Files.writeString(mf, Files.readString(mf).replace("\"format\" : 2", "\"format\" : 1"));
        refused(prepare(teacher, corpus, data, "--rows-per-shard", "40"), "format 1 manifest", "delete");
        // --debug adds the stack trace.
        CliTestSupport.Run debug = CliTestSupport.run(concat(prepare(teacher, corpus, data), "--debug")
                .toArray(String[]::new));
        assertEquals(2, debug.exit());
        assertTrue(debug.err().lines().count() > 1, debug.err());
    }

    private static byte[] concatBytes(byte[]... parts) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }
}
