package molt.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;
import molt.teacher.InputException;
import molt.teacher.tokenizer.ByteTokenizer;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Data loss, checksums, messages and sizes: each class of problem with several instances. */
class DataReliabilityTest {
    private static final ByteTokenizer TOK = new ByteTokenizer();

    // ---- helpers ------------------------------------------------------------------------------------------------

    /** Every file and folder under {@code dir} with its bytes' digest: equal snapshots mean byte-for-byte intact. */
    static Map<String, String> snapshot(Path dir) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.toList()) {
                out.put(dir.relativize(p).toString(), Files.isDirectory(p) ? "dir" : Checksums.sha256(p));
            }
        }
        return out;
    }

    static Path jsonl(Path file, int docs) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (String t : DataTest.docs(docs)) {
            sb.append("{\"text\": ").append(new ObjectMapper().writeValueAsString(t)).append("}\n");
        }
        Files.writeString(file, sb);
        return file;
    }

    static PreparedDataset prepare(Path source, Path out, int rowsPerShard) throws IOException {
        try (DocumentSource s = Sources.open(source.toString(), "text")) {
            return PreparedDataset.prepare(s, TOK, 16, 1, 0.1, rowsPerShard, out);
        }
    }

    static InputException refusedOneLine(Executable run, String... fragments) {
        InputException e = assertThrows(InputException.class, () -> run.run());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
        }
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        return e;
    }

    /** Flips the bits of one byte in the middle of a file (same size, different content). */
    static void flipByte(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        b[b.length / 2] ^= (byte) 0xFF;
        Files.write(file, b);
    }

    @FunctionalInterface
    interface Executable {
        void run() throws Exception;
    }

    // ---- 1. data loss: molt writes only into what it can show is its own ----------------------------------------

    @Test
    void nonEmptyDirectoriesMoltDidNotPrepareAreRefusedAndLeftIntact(@TempDir Path dir) throws IOException {
        Path src = jsonl(dir.resolve("src.jsonl"), 100);
        // A user's folder holding a Parquet file named like a shard.
        Path userShards = Files.createDirectories(dir.resolve("user-shards"));
        DataTest.writeText(userShards.resolve("train-00000.parquet"), DataTest.docs(10), CompressionCodecName.SNAPPY);
        // An unrelated folder with files and a subfolder.
        Path unrelated = Files.createDirectories(dir.resolve("unrelated"));
        Files.writeString(unrelated.resolve("notes.txt"), "my notes");
        Files.createDirectories(unrelated.resolve("sub"));
        Files.writeString(unrelated.resolve("sub").resolve("a.bin"), "x");
        // A folder holding only a hidden file.
        Path hidden = Files.createDirectories(dir.resolve("hidden"));
        Files.writeString(hidden.resolve(".keep"), "");
        // A folder whose manifest.json is someone else's.
        Path foreignManifest = Files.createDirectories(dir.resolve("foreign-manifest"));
        Files.writeString(foreignManifest.resolve(PreparedDataset.MANIFEST), "{\"name\": \"my web app\"}");
        // A folder a molt without markers left half-prepared: shards, no manifest (molt cannot show it wrote them).
        Path oldInterrupted = Files.createDirectories(dir.resolve("old-interrupted"));
        SequenceShards.write(oldInterrupted.resolve("train-00000.parquet"), List.of(new long[] {1, 2, 3}),
                CompressionCodecName.ZSTD);

        Map<Path, String> expected = Map.of(userShards, "so molt will not overwrite them",
                unrelated, "is not empty and molt did not prepare it", hidden, "it holds .keep",
                foreignManifest, "not a molt dataset manifest",
                oldInterrupted, "neither " + OutputDirectory.MARKER + " nor manifest.json");
        for (Map.Entry<Path, String> c : expected.entrySet()) {
            Map<String, String> before = snapshot(c.getKey());
            InputException e = refusedOneLine(() -> prepare(src, c.getKey(), 20), c.getValue());
            assertTrue(e.getMessage().startsWith(c.getKey().toString()), e.getMessage());
            assertEquals(before, snapshot(c.getKey()), c.getKey() + " is left byte for byte as it was");
        }
        // A file where a directory is expected.
        Path file = Files.writeString(dir.resolve("out-file"), "keep me");
        refusedOneLine(() -> prepare(src, file, 20), "is a file");
        assertEquals("keep me", Files.readString(file));
    }

    @Test
    void outputIsNeverTheSourceNorInsideItNorAroundIt(@TempDir Path dir) throws IOException {
        Path shards = Files.createDirectories(dir.resolve("shards"));
        DataTest.writeText(shards.resolve("train-00000.parquet"), DataTest.docs(200), CompressionCodecName.SNAPPY);
        Path jsonlDir = Files.createDirectories(dir.resolve("texts"));
        Path src = jsonl(jsonlDir.resolve("src.jsonl"), 100);
        Path link = Files.createSymbolicLink(dir.resolve("link-to-shards"), shards);
        Map<String, String> shardsBefore = snapshot(shards);
        Map<String, String> textsBefore = snapshot(jsonlDir);

        refusedOneLine(() -> prepare(shards, shards, 20), "is the data source itself");
        refusedOneLine(() -> prepare(shards, link, 20), "is the data source itself");
        refusedOneLine(() -> prepare(shards, shards.resolve("..").resolve("shards"), 20), "is the data source itself");
        refusedOneLine(() -> prepare(shards, shards.resolve("prepared"), 20), "is inside the data source");
        refusedOneLine(() -> prepare(link, shards.resolve("prepared"), 20), "is inside the data source");
        refusedOneLine(() -> prepare(src, jsonlDir, 20), "holds the data source");
        refusedOneLine(() -> prepare(src, dir, 20), "holds the data source");
        refusedOneLine(() -> prepare(src, src, 20), "is the data source itself");
        assertEquals(shardsBefore, snapshot(shards));
        assertEquals(textsBefore, snapshot(jsonlDir));
        assertFalse(Files.exists(shards.resolve("prepared")));
    }

    @Test
    void theMarkerComesBeforeAnyShardAndAnInterruptedPreparationIsRedone(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("p");
        // A source that fails after enough documents for several shards: the preparation is interrupted.
        StringBuilder sb = new StringBuilder(Files.readString(jsonl(dir.resolve("ok.jsonl"), 150)));
        sb.append("{\"text\": broken}\n");
        Path failing = Files.writeString(dir.resolve("failing.jsonl"), sb);
        boolean[] checked = {false};
        try (DocumentSource s = new DocumentSource() {
            final DocumentSource inner = Sources.open(failing.toString(), "text");

            @Override
            public Document next() {
                if (!checked[0]) {
                    checked[0] = true;
                    assertTrue(OutputDirectory.hasMarker(out), "the marker is written before the first document");
                    try (Stream<Path> files = Files.list(out)) {
                        assertEquals(List.of(OutputDirectory.MARKER),
                                files.map(p -> p.getFileName().toString()).toList());
                    } catch (IOException e) {
                        throw new AssertionError(e);
                    }
                }
                return inner.next();
            }

            @Override
            public String identity() {
                return inner.identity();
            }

            @Override
            public void close() {
                inner.close();
            }
        }) {
            refusedOneLine(() -> PreparedDataset.prepare(s, TOK, 16, 1, 0.1, 20, out), "failing.jsonl:151: not valid JSON");
        }
        assertTrue(checked[0]);
        assertTrue(Files.exists(out.resolve("train-00003.parquet")), "shards were written before the failure");
        assertFalse(Files.exists(out.resolve(PreparedDataset.MANIFEST)));
        refusedOneLine(() -> PreparedDataset.open(out), "interrupted or incomplete preparation");
        // A user's file put into the directory meanwhile is not molt's: it is left alone.
        Files.writeString(out.resolve("notes.txt"), "mine");
        // Redone from a smaller source: the stale shards of the first attempt are gone, nothing else is touched.
        PreparedDataset ds = prepare(jsonl(dir.resolve("small.jsonl"), 40), out, 20);
        assertEquals("mine", Files.readString(out.resolve("notes.txt")));
        List<String> parquet;
        try (Stream<Path> files = Files.list(out)) {
            parquet = files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".parquet")).sorted().toList();
        }
        List<String> listed = new ArrayList<>();
        for (String split : List.of("train", "val")) {
            ds.shards(split).forEach(p -> listed.add(p.getFileName().toString()));
        }
        assertEquals(listed.stream().sorted().toList(), parquet, "exactly the shards the manifest lists");
        assertTrue(OutputDirectory.hasMarker(out));
        // An empty directory is taken, and a complete one is reused.
        Path empty = Files.createDirectories(dir.resolve("empty"));
        prepare(jsonl(dir.resolve("e.jsonl"), 40), empty, 20);
        assertTrue(OutputDirectory.hasMarker(empty));
        long modified = Files.getLastModifiedTime(out.resolve(PreparedDataset.MANIFEST)).toMillis();
        prepare(dir.resolve("small.jsonl"), out, 20);
        assertEquals(modified, Files.getLastModifiedTime(out.resolve(PreparedDataset.MANIFEST)).toMillis());
    }

    // ---- 2. checksums on read-back ---------------------------------------------------------------------------

    @Test
    void manifestRecordsEveryShardsDigestAndTamperedShardsAreRefusedOnRead(@TempDir Path dir) throws IOException {
        PreparedDataset ds = prepare(jsonl(dir.resolve("src.jsonl"), 300), dir.resolve("p"), 40);
        ObjectNode m = PreparedDataset.open(ds.dir()).manifest();
        assertEquals(2, m.path("format").asInt());
        List<Path> train = ds.shards("train");
        assertTrue(train.size() >= 3, "several shards: " + train.size());
        for (PreparedDataset.Shard s : ds.shardFiles("train")) {
            assertEquals(Checksums.sha256(s.path()), s.sha256());
            assertEquals(Files.size(s.path()), s.bytes());
        }
        assertEquals(ds.sequences("train"), ds.shardFiles("train").stream().mapToLong(PreparedDataset.Shard::rows).sum());

        // Instance 1: one byte flipped in a shard (same size): refused by every reader, naming both digests.
        Path shard = train.get(1);
        String expected = ds.shardFiles("train").get(1).sha256();
        flipByte(shard);
        String found = Checksums.sha256(shard);
        PreparedDataset reopened = PreparedDataset.open(ds.dir()); // open stays cheap: sizes only
        refusedOneLine(() -> SequenceShards.read(shard), shard.toString(), "checksum mismatch", expected, found);
        refusedOneLine(() -> reopened.verify(shard), shard.toString(), expected, found);
        refusedOneLine(() -> {
            BatchReader r = new BatchReader(reopened, "train", 7, 0);
            for (int i = 0; i < 200; i++) {
                r.next();
            }
        }, shard.toString(), "checksum mismatch");

        // Instance 2: a shard replaced by another shard of the same dataset (valid Parquet, other rows).
        Path a = train.get(0);
        Path last = train.get(train.size() - 1);
        byte[] original = Files.readAllBytes(a);
        Files.copy(train.get(2), a, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        if (Files.size(a) == ds.shardFiles("train").get(0).bytes()) {
            refusedOneLine(() -> SequenceShards.read(a), a.toString(), "checksum mismatch");
        } else {
            refusedOneLine(() -> PreparedDataset.open(ds.dir()), a.toString(), "bytes, but manifest.json records");
        }

        Files.write(a, original);
        // Instance 3: a truncated shard is refused when the dataset is opened.
        byte[] bytes = Files.readAllBytes(last);
        Files.write(last, java.util.Arrays.copyOf(bytes, bytes.length - 10));
        refusedOneLine(() -> PreparedDataset.open(ds.dir()), last.toString(), "truncated or changed");
    }

    @Test
    void tamperedLossMasksAreRefusedToo(@TempDir Path dir) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 60; i++) {
            sb.append("{\"q\": \"Question ").append(i).append("?\", \"a\": \"Answer ").append(i).append(".\"}\n");
        }
        Path f = Files.writeString(dir.resolve("inst.jsonl"), sb);
        PreparedDataset ds;
        try (DocumentSource s = Sources.open(f.toString(), "q", "a")) {
            ds = PreparedDataset.prepare(s, TOK, 24, 1, 0.0, 1000, dir.resolve("p"));
        }
        Path shard = ds.shards("train").get(0);
        flipByte(shard);
        refusedOneLine(() -> SequenceShards.readMasks(shard), "checksum mismatch");
        refusedOneLine(() -> new BatchReader(ds, "train", 2, 0), "checksum mismatch");
    }

    @Test
    void manifestsWithoutChecksumsOrWithBadEntriesAreRefused(@TempDir Path dir) throws IOException {
        PreparedDataset ds = prepare(jsonl(dir.resolve("src.jsonl"), 100), dir.resolve("p"), 40);
        Path mf = ds.dir().resolve(PreparedDataset.MANIFEST);
        ObjectMapper json = new ObjectMapper();
        String good = Files.readString(mf);
        ObjectNode old = (ObjectNode) json.readTree(good);
        old.put("format", 1);
        for (String split : List.of("train", "val")) {
            var arr = json.createArrayNode();
            old.path("splits").path(split).path("shards").forEach(e -> arr.add(e.path("file").asText()));
            ((ObjectNode) old.path("splits").path(split)).set("shards", arr);
        }
        // Format 1 (an older molt, names only): upgraded in place, the shards' digests recorded as they are, so a run
        // directory made before checksums still resumes; its shards are untouched.
        Files.writeString(mf, old.toString());
        Map<String, String> before = snapshot(ds.dir());
        PreparedDataset upgraded = PreparedDataset.open(ds.dir());
        assertEquals(2, json.readTree(mf.toFile()).path("format").asInt());
        assertEquals(json.readTree(good).path("splits"), json.readTree(mf.toFile()).path("splits"));
        assertEquals(ds.sequences("train"), upgraded.sequences("train"));
        before.remove(PreparedDataset.MANIFEST);
        Map<String, String> after = snapshot(ds.dir());
        after.remove(PreparedDataset.MANIFEST);
        assertEquals(before, after, "only the manifest is rewritten");
        // A format 1 manifest whose shards are not file names of the directory is refused.
        old.withArray("/splits/train/shards").set(0, json.getNodeFactory().textNode("../src.jsonl"));
        Files.writeString(mf, old.toString());
        refusedOneLine(() -> PreparedDataset.open(ds.dir()), "format 1 manifest", "not a shard file");
        Files.writeString(mf, good);
        // Entries that do not name a shard of their split, or lack a digest.
        for (String bad : List.of("\"../src.jsonl\"", "\"val-00000.parquet\"", "\"/etc/passwd\"")) {
            Files.writeString(mf, good.replace("\"train-00000.parquet\"", bad));
            refusedOneLine(() -> PreparedDataset.open(ds.dir()), mf.toString(), "splits.train.shards[0]");
        }
        Files.writeString(mf, good.replaceFirst("\"sha256\" : \"[0-9a-f]{64}\"", "\"sha256\" : \"abc\""));
        refusedOneLine(() -> PreparedDataset.open(ds.dir()), "splits.train.shards[0]", "sha256");
        Files.writeString(mf, good.replace("\"format\" : 2", "\"format\" : 3"));
        refusedOneLine(() -> PreparedDataset.open(ds.dir()), "prepared by a newer molt");
    }

    @Test
    void tamperedOrUncheckedTopKFilesAreRefusedOnRead(@TempDir Path dir) throws IOException {
        PreparedDataset ds = prepare(jsonl(dir.resolve("src.jsonl"), 200), dir.resolve("p"), 60);
        int k = 3;
        for (String split : List.of("train", "val")) {
            for (Path shard : ds.shards(split)) {
                List<TopKCache.Entry> entries = new ArrayList<>();
                Random r = new Random(shard.hashCode());
                for (long[] row : SequenceShards.read(shard)) {
                    long[] in = java.util.Arrays.copyOf(row, row.length - 1);
                    int[] top = new int[in.length * k];
                    float[] lp = new float[in.length * k];
                    for (int i = 0; i < top.length; i++) {
                        top[i] = r.nextInt(258);
                        lp[i] = -r.nextFloat();
                    }
                    entries.add(new TopKCache.Entry(in, top, lp));
                }
                TopKCache.write(TeacherTargets.fileFor(shard), k, entries);
            }
        }
        Path shard0 = ds.shards("train").get(0);
        Path shard1 = ds.shards("train").get(1);
        Path f0 = TeacherTargets.fileFor(shard0);
        Path f1 = TeacherTargets.fileFor(shard1);
        String line = Files.readString(TopKCache.checksumFile(f0));
        assertEquals(Checksums.sha256(f0) + "  " + f0.getFileName() + "\n", line, "sha256sum format");
        TeacherTargets targets = new TeacherTargets(ds, "train");
        long[] row0 = SequenceShards.read(shard0).get(0);
        assertEquals(k, targets.entry(shard0, 0, row0).topIds().length / (row0.length - 1));

        // Instance 1: a byte flipped in a cache file.
        String expected = Checksums.sha256(f1);
        flipByte(f1);
        refusedOneLine(() -> TopKCache.read(f1), f1.toString(), "checksum mismatch", expected, Checksums.sha256(f1));
        long[] row1 = SequenceShards.read(shard1).get(0);
        refusedOneLine(() -> new TeacherTargets(ds, "train").entry(shard1, 0, row1), f1.toString(), "checksum mismatch");
        // Instance 2: a cache file without its checksum (an interrupted or older 'molt data topk').
        Files.delete(TopKCache.checksumFile(f0));
        refusedOneLine(() -> TopKCache.read(f0), f0.toString(), "has no checksum file");
        refusedOneLine(() -> new TeacherTargets(ds, "train"), "has no checksum file");
        // Instance 3: a checksum file that is not one.
        Path fv = TeacherTargets.fileFor(ds.shards("val").get(0));
        Files.writeString(TopKCache.checksumFile(fv), "not a digest\n");
        refusedOneLine(() -> TopKCache.read(fv), TopKCache.checksumFile(fv).toString(), "expected one line");
        // Instance 4: another cache file's checksum.
        Files.copy(TopKCache.checksumFile(TeacherTargets.fileFor(ds.shards("train").get(2))),
                TopKCache.checksumFile(fv), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        refusedOneLine(() -> TopKCache.read(fv), "expected one line");
    }

    @Test
    void topKFilesReplaceOnlyWhatMoltWrote(@TempDir Path dir) throws IOException {
        List<TopKCache.Entry> one = List.of(new TopKCache.Entry(new long[] {1, 2}, new int[] {3, 4}, new float[] {-1, -2}));
        // Someone else's file (not Parquet; Parquet without molt's metadata) is not replaced.
        Path foreign = Files.writeString(dir.resolve("topk-train-00000.parquet"), "someone's file");
        refusedOneLine(() -> TopKCache.write(foreign, 1, one), "is not a top-k cache molt wrote");
        assertEquals("someone's file", Files.readString(foreign));
        Path parquet = DataTest.writeText(dir.resolve("topk-train-00001.parquet"), DataTest.docs(3),
                CompressionCodecName.SNAPPY);
        String before = Checksums.sha256(parquet);
        refusedOneLine(() -> TopKCache.write(parquet, 1, one), "is not a top-k cache molt wrote");
        assertEquals(before, Checksums.sha256(parquet));
        // molt's own file is replaced, and its checksum with it; so is one whose checksum was lost.
        Path mine = dir.resolve("topk-val-00000.parquet");
        TopKCache.write(mine, 1, one);
        List<TopKCache.Entry> two = List.of(new TopKCache.Entry(new long[] {5}, new int[] {6, 7}, new float[] {-1, -3}));
        TopKCache.write(mine, 2, two);
        assertEquals(2, TopKCache.k(mine));
        Files.delete(TopKCache.checksumFile(mine));
        TopKCache.write(mine, 1, one);
        assertArrayEquals(new int[] {3, 4}, TopKCache.read(mine).get(0).topIds());
        try (Stream<Path> s = Files.list(dir)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary file is left");
        }
    }

    // ---- 3. messages that say what is wrong ------------------------------------------------------------------

    @Test
    void aValidJsonLineLongerThanJacksonsDefaultLimitParses(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("long.jsonl");
        int n = 21_000_000; // over Jackson's default maximum string length (20,000,000)
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(f), 1 << 20)) {
            out.write("{\"text\": \"first\"}\n{\"id\": 7, \"text\": \"".getBytes(StandardCharsets.UTF_8));
            byte[] chunk = "abcdefghij".repeat(100_000).getBytes(StandardCharsets.UTF_8);
            for (int i = 0; i < n / chunk.length; i++) {
                out.write(chunk);
            }
            out.write("\\u00e9\u00e9\"}\r\n{\"text\": \"last\"}".getBytes(StandardCharsets.UTF_8));
        }
        try (DocumentSource s = Sources.open(f.toString(), "text")) {
            assertEquals("first", s.next().text());
            String big = s.next().text();
            assertEquals(n + 2, big.length());
            assertTrue(big.startsWith("abcdefghij") && big.endsWith("\u00e9\u00e9"));
            assertEquals("last", s.next().text());
            assertNull(s.next());
        }
    }

    @Test
    void invalidUtf8IsReportedWithItsFileAndLine(@TempDir Path dir) throws IOException {
        byte[][] bad = {
            {(byte) 0xFF},                           // never valid
            {(byte) 0xC0, (byte) 0x80},              // overlong NUL
            {(byte) 0xE2, (byte) 0x82},              // truncated three-byte sequence
            {(byte) 0xED, (byte) 0xA0, (byte) 0x80}, // a UTF-16 surrogate
            {(byte) 0xE9, 'x'},                      // Latin-1 'e acute'
        };
        int[] lines = {3, 2, 5, 1, 20_001}; // the last one far beyond the first read buffer
        for (int c = 0; c < bad.length; c++) {
            Path f = dir.resolve("bad" + c + ".jsonl");
            try (OutputStream out = Files.newOutputStream(f)) {
                for (int l = 1; l < lines[c]; l++) {
                    out.write(("{\"text\": \"line " + l + " caf\u00e9 \u4e2d \ud83d\ude00\"}\n").getBytes(StandardCharsets.UTF_8));
                }
                out.write("{\"text\": \"bad ".getBytes(StandardCharsets.UTF_8));
                out.write(bad[c]);
                out.write("\"}\n{\"text\": \"after\"}\n".getBytes(StandardCharsets.UTF_8));
            }
            try (DocumentSource s = Sources.open(f.toString(), "text")) {
                InputException e = refusedOneLine(() -> {
                    while (s.next() != null) {
                        // read to the bad line
                    }
                }, f + ":" + lines[c] + ": not valid UTF-8");
                assertTrue(e.getMessage().contains("at byte 15 of the line"), e.getMessage());
            }
        }
        // A byte-order mark on the first line and CRLF line ends are fine.
        Path bom = dir.resolve("bom.jsonl");
        Files.write(bom, concat(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF},
                "{\"text\": \"a\"}\r\n\r\n  \n{\"text\": \"b\"}\r\n".getBytes(StandardCharsets.UTF_8)));
        try (DocumentSource s = Sources.open(bom.toString(), "text")) {
            assertEquals("a", s.next().text());
            assertEquals("b", s.next().text());
            assertNull(s.next());
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void theUtf8CheckAgreesWithJavasStrictDecoder() {
        Random r = new Random(5);
        var decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        for (int t = 0; t < 50_000; t++) {
            byte[] b = new byte[1 + r.nextInt(6)];
            for (int i = 0; i < b.length; i++) {
                // Mostly bytes around the interesting boundaries.
                b[i] = (byte) (r.nextBoolean() ? r.nextInt(256) : new int[] {0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                    0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0x8F, 0x90, 0x9F, 0xA0}[r.nextInt(17)]);
            }
            boolean valid;
            try {
                decoder.reset().decode(ByteBuffer.wrap(b));
                valid = true;
            } catch (CharacterCodingException e) {
                valid = false;
            }
            assertEquals(valid, JsonlDocuments.invalidUtf8(b, 0, b.length) < 0, java.util.HexFormat.of().formatHex(b));
        }
    }

    @Test
    void jsonLinesErrorsNameFileLineAndWhatIsWrong(@TempDir Path dir) throws IOException {
        Map<String, String> cases = Map.of(
                "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n", ":2: not valid JSON",
                "{\"text\": \"ok\"}\n\n[1, 2]\n", ":3: expected a JSON object, found an array",
                "{\"body\": \"x\", \"title\": \"y\"}\n", ":1: expected a string field 'text', found no such field (fields: body, title)",
                "{\"text\": 42}\n", ":1: expected a string field 'text', found a number");
        int i = 0;
        for (Map.Entry<String, String> c : cases.entrySet()) {
            Path f = Files.writeString(dir.resolve("c" + i++ + ".jsonl"), c.getKey());
            try (DocumentSource s = Sources.open(f.toString(), "text")) {
                refusedOneLine(() -> {
                    while (s.next() != null) {
                        // read to the bad line
                    }
                }, f + c.getValue());
            }
        }
    }

    @Test
    void preparedDirectoriesGivenAsSourcesAreNamedForWhatTheyAre(@TempDir Path dir) throws IOException {
        PreparedDataset ds = prepare(jsonl(dir.resolve("src.jsonl"), 100), dir.resolve("complete"), 20);
        refusedOneLine(() -> Sources.open(ds.dir().toString(), "text"), ds.dir().toString(),
                "is a dataset molt prepared");
        // Even with the column the shards do hold: packed rows are not documents.
        refusedOneLine(() -> Sources.open(ds.dir().toString(), SequenceShards.COLUMN), "is a dataset molt prepared");
        // One shard of it, as a file.
        Path shard = ds.shards("train").get(0);
        refusedOneLine(() -> Sources.open(shard.toString(), "text"), shard.toString(), "has no column 'text'",
                "is a shard of the dataset molt prepared in");
        // An interrupted preparation (marker, shards, no manifest).
        Path interrupted = Files.createDirectories(dir.resolve("interrupted"));
        for (String name : List.of(OutputDirectory.MARKER, "train-00000.parquet", "train-00001.parquet")) {
            Files.copy(ds.dir().resolve(name), interrupted.resolve(name));
        }
        refusedOneLine(() -> Sources.open(interrupted.toString(), "text"), "interrupted or incomplete preparation");
        // One interrupted by an older molt (no marker): what its shards are.
        Files.delete(interrupted.resolve(OutputDirectory.MARKER));
        refusedOneLine(() -> Sources.open(interrupted.toString(), "text"), "has no column 'text'",
                "interrupted or incomplete molt preparation");
        // An ordinary Parquet file without the column keeps the plain message.
        Path plain = DataTest.writeText(dir.resolve("plain.parquet"), DataTest.docs(3), CompressionCodecName.SNAPPY);
        InputException e = refusedOneLine(() -> Sources.open(plain.toString(), "content"), "has no column 'content'");
        assertFalse(e.getMessage().contains("molt"), e.getMessage());
    }

    // ---- 4. sizes are checked before anything is allocated ---------------------------------------------------

    @Test
    void sizesAreRefusedBeforeAnythingIsAllocated(@TempDir Path dir) throws IOException {
        refusedOneLine(() -> PreparedDataset.checkSizes(Integer.MAX_VALUE, 1, "--seq-len", "--rows-per-shard"),
                "--seq-len: expected 1.." + PreparedDataset.MAX_SEQ_LEN, "found " + Integer.MAX_VALUE);
        refusedOneLine(() -> PreparedDataset.checkSizes(0, 1, "--seq-len", "--rows-per-shard"), "--seq-len");
        refusedOneLine(() -> PreparedDataset.checkSizes(16, 0, "--seq-len", "--rows-per-shard"),
                "--rows-per-shard: expected >= 1, found 0");
        long heap = Runtime.getRuntime().maxMemory();
        int rows = (int) Math.min(Integer.MAX_VALUE, heap / (9L * (PreparedDataset.MAX_SEQ_LEN + 1)));
        refusedOneLine(() -> PreparedDataset.checkSizes(PreparedDataset.MAX_SEQ_LEN, rows, "--seq-len",
                "--rows-per-shard"), "--rows-per-shard " + rows + " x --seq-len", "maximum heap", "use --rows-per-shard <= ");
        refusedOneLine(() -> PreparedDataset.checkSizes(1024, Integer.MAX_VALUE, "seq_len", "rows_per_shard"),
                "rows_per_shard " + Integer.MAX_VALUE);
        PreparedDataset.checkSizes(1024, 4096, "--seq-len", "--rows-per-shard"); // the defaults fit
        // Through prepare: refused before the output directory exists.
        Path src = jsonl(dir.resolve("src.jsonl"), 10);
        Path out = dir.resolve("never");
        try (DocumentSource s = Sources.open(src.toString(), "text")) {
            refusedOneLine(() -> PreparedDataset.prepare(s, TOK, Integer.MAX_VALUE - 1, 0, 0.1, 16, out), "seq_len");
            refusedOneLine(() -> PreparedDataset.prepare(s, TOK, 1 << 20, 0, 0.1, Integer.MAX_VALUE, out),
                    "rows_per_shard");
        }
        assertFalse(Files.exists(out));
        // Top-k: one shard's targets must fit; k and positions within Java's arrays.
        refusedOneLine(() -> TopKCache.checkFits(4096, 1024, 128_256, "--k"), "--k 128256", "maximum heap",
                "use --k <= ");
        refusedOneLine(() -> TopKCache.checkFits(1, 1 << 20, 4096, "--k"), "--k 4096");
        refusedOneLine(() -> TopKCache.checkFits(4096, 1 << 20, Integer.MAX_VALUE, "--k"), "--k " + Integer.MAX_VALUE,
                "prepare the data with fewer rows per shard");
        TopKCache.checkFits(4096, 1024, 16, "--k");
    }
}
