package molt.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import molt.teacher.InputException;
import molt.teacher.tokenizer.ByteTokenizer;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Types;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class DataTest {
    private static final ByteTokenizer TOK = new ByteTokenizer();

    static List<String> docs(int n) {
        List<String> d = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            d.add("Document number " + i + " says " + "word ".repeat(i % 7) + "and ends.");
        }
        return d;
    }

    /** A text column, as Hugging Face datasets write it (optional binary, String annotation). */
    static Path writeText(Path file, List<String> texts, CompressionCodecName codec) throws IOException {
        MessageType schema = Types.buildMessage().optional(PrimitiveType.PrimitiveTypeName.BINARY)
                .as(LogicalTypeAnnotation.stringType()).named("text")
                .optional(PrimitiveType.PrimitiveTypeName.INT64).named("id").named("schema");
        SimpleGroupFactory f = new SimpleGroupFactory(schema);
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(file)).withType(schema)
                .withCompressionCodec(codec).build()) {
            long id = 0;
            for (String t : texts) {
                w.write(f.newGroup().append("text", t).append("id", id++));
            }
        }
        return file;
    }

    /** An input_ids column of int64 in pyarrow's three-level LIST layout. */
    static Path writeIds(Path file, List<long[]> rows) throws IOException {
        MessageType schema = Types.buildMessage().optionalList().optionalElement(PrimitiveType.PrimitiveTypeName.INT64)
                .named("input_ids").named("schema");
        SimpleGroupFactory f = new SimpleGroupFactory(schema);
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(file)).withType(schema)
                .withCompressionCodec(CompressionCodecName.SNAPPY).build()) {
            for (long[] r : rows) {
                Group g = f.newGroup();
                Group list = g.addGroup("input_ids");
                for (long x : r) {
                    list.addGroup("list").append("element", x);
                }
                w.write(g);
            }
        }
        return file;
    }

    private static List<String> readAll(DocumentSource s) {
        List<String> out = new ArrayList<>();
        Document d;
        while ((d = s.next()) != null) {
            out.add(d.text());
        }
        s.close();
        return out;
    }

    @ParameterizedTest
    @EnumSource(value = CompressionCodecName.class, names = {"SNAPPY", "ZSTD", "UNCOMPRESSED", "GZIP"})
    void textColumnsReadUnderEveryCodec(CompressionCodecName codec, @TempDir Path dir) throws IOException {
        List<String> texts = docs(50);
        Path f = writeText(dir.resolve("data.parquet"), texts, codec);
        assertEquals(texts, readAll(Sources.open(f.toString(), "text")));
    }

    @Test
    void shardFoldersJsonlAndIdColumnsRead(@TempDir Path dir) throws IOException {
        Path shards = Files.createDirectories(dir.resolve("shards"));
        List<String> texts = docs(30);
        writeText(shards.resolve("train-00000-of-00002.parquet"), texts.subList(0, 12), CompressionCodecName.SNAPPY);
        writeText(shards.resolve("train-00001-of-00002.parquet"), texts.subList(12, 30), CompressionCodecName.ZSTD);
        assertEquals(texts, readAll(Sources.open(shards.toString(), "text")));

        Path jsonl = dir.resolve("d.jsonl");
        StringBuilder sb = new StringBuilder();
        for (String t : texts) {
            sb.append("{\"text\": ").append(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(t))
                    .append("}\n");
        }
        Files.writeString(jsonl, sb);
        assertEquals(texts, readAll(Sources.open(jsonl.toString(), "text")));

        List<long[]> ids = List.of(new long[] {1, 2, 3}, new long[] {4}, new long[] {}, new long[] {255, 256, 257});
        try (DocumentSource s = Sources.open(writeIds(dir.resolve("ids.parquet"), ids).toString(), "input_ids")) {
            for (long[] want : ids) {
                assertArrayEquals(want, s.next().ids());
            }
            assertEquals(null, s.next());
        }
    }

    @Test
    void textToTokensToParquetToBatchesRoundTrips(@TempDir Path dir) throws IOException {
        List<String> texts = docs(200);
        Path src = writeText(dir.resolve("src.parquet"), texts, CompressionCodecName.SNAPPY);
        PreparedDataset ds;
        try (DocumentSource s = Sources.open(src.toString(), "text")) {
            ds = PreparedDataset.prepare(s, TOK, 32, 7, 0.1, 20, dir.resolve("prepared"));
        }
        // Rebuild the expected token stream of each split by hand.
        List<Long> train = new ArrayList<>();
        List<Long> val = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            List<Long> target = PreparedDataset.isValidation(7, i, 0.1) ? val : train;
            for (long id : TOK.encode(texts.get(i), false)) {
                target.add(id);
            }
            target.add((long) ByteTokenizer.EOS);
        }
        assertTrue(val.size() > 0 && train.size() > val.size());
        List<long[]> rows = new ArrayList<>();
        for (Path shard : ds.shards("train")) {
            rows.addAll(SequenceShards.read(shard));
        }
        assertEquals((train.size() - 1) / 32, rows.size());
        for (int r = 0; r < rows.size(); r++) {
            for (int j = 0; j <= 32; j++) {
                assertEquals((long) train.get(r * 32 + j), rows.get(r)[j], "row " + r + " token " + j);
            }
        }
        // Every training row comes out exactly once per epoch.
        // One epoch yields every training row exactly once (compared as multisets: rows may coincide in content).
        BatchReader br = new BatchReader(ds, "train", 1, 11);
        java.util.Map<String, Integer> left = new java.util.HashMap<>();
        rows.forEach(r -> left.merge(Arrays.toString(r), 1, Integer::sum));
        for (int i = 0; i < rows.size(); i++) {
            String key = Arrays.toString(br.next()[0]);
            assertTrue(left.getOrDefault(key, 0) > 0, "row " + i + " of the epoch is not an unused training row");
            left.merge(key, -1, Integer::sum);
        }
        assertEquals(0, br.epoch());
        br.next();
        assertEquals(1, br.epoch());
    }

    @Test
    void savedPositionResumesExactly(@TempDir Path dir) throws IOException {
        PreparedDataset ds;
        try (DocumentSource s = Sources.open(writeText(dir.resolve("s.parquet"), docs(300),
                CompressionCodecName.SNAPPY).toString(), "text")) {
            ds = PreparedDataset.prepare(s, TOK, 16, 3, 0.05, 25, dir.resolve("p"));
        }
        BatchReader straight = new BatchReader(ds, "train", 4, 5);
        List<long[][]> want = new ArrayList<>();
        for (int i = 0; i < 400; i++) { // crosses shard and epoch boundaries
            want.add(straight.next());
        }
        BatchReader first = new BatchReader(ds, "train", 4, 5);
        for (int i = 0; i < 47; i++) {
            first.next();
        }
        BatchReader.Position saved = first.position();
        BatchReader resumed = new BatchReader(ds, "train", 4, 5);
        resumed.seek(saved);
        for (int i = 47; i < 400; i++) {
            assertArrayEquals(want.get(i), resumed.next(), "batch " + i);
        }
        assertTrue(resumed.epoch() >= 1, "the test crosses an epoch");
    }

    @Test
    void splitsNeverShareADocument(@TempDir Path dir) throws IOException {
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            texts.add("unique document " + i + " marker-" + i + "-end");
        }
        PreparedDataset ds;
        try (DocumentSource s = Sources.open(writeText(dir.resolve("s.parquet"), texts,
                CompressionCodecName.SNAPPY).toString(), "text")) {
            ds = PreparedDataset.prepare(s, TOK, 64, 9, 0.2, 1000, dir.resolve("p"));
        }
        String train = decode(ds, "train");
        String val = decode(ds, "val");
        int inVal = 0;
        for (int i = 0; i < 400; i++) {
            String m = "marker-" + i + "-end";
            assertFalse(train.contains(m) && val.contains(m), m + " in both splits");
            inVal += val.contains(m) ? 1 : 0;
        }
        assertTrue(inVal > 40 && inVal < 120, "about 20% of documents are held out: " + inVal);
    }

    private static String decode(PreparedDataset ds, String split) {
        StringBuilder sb = new StringBuilder();
        for (Path p : ds.shards(split)) {
            for (long[] r : SequenceShards.read(p)) {
                sb.append(TOK.decode(r, false)).append('|');
            }
        }
        return sb.toString();
    }

    @Test
    void preparedDatasetsAreReusedOrRefused(@TempDir Path dir) throws IOException {
        Path src = writeText(dir.resolve("s.parquet"), docs(100), CompressionCodecName.SNAPPY);
        Path out = dir.resolve("p");
        try (DocumentSource s = Sources.open(src.toString(), "text")) {
            PreparedDataset.prepare(s, TOK, 16, 1, 0.1, 50, out);
        }
        long modified = Files.getLastModifiedTime(out.resolve(PreparedDataset.MANIFEST)).toMillis();
        try (DocumentSource s = Sources.open(src.toString(), "text")) {
            PreparedDataset again = PreparedDataset.prepare(s, TOK, 16, 1, 0.1, 50, out);
            assertEquals(16, again.seqLen());
        }
        assertEquals(modified, Files.getLastModifiedTime(out.resolve(PreparedDataset.MANIFEST)).toMillis());
        try (DocumentSource s = Sources.open(src.toString(), "text")) {
            InputException e = assertThrows(InputException.class,
                    () -> PreparedDataset.prepare(s, TOK, 32, 1, 0.1, 50, out));
            assertTrue(e.getMessage().contains("seq_len: prepared with 16, asked for 32"), e.getMessage());
        }
    }

    @Test
    void badInputsAreOneLineErrorsNamingTheFile(@TempDir Path dir) throws IOException {
        Path good = writeText(dir.resolve("good.parquet"), docs(20), CompressionCodecName.SNAPPY);
        byte[] bytes = Files.readAllBytes(good);
        Path truncated = dir.resolve("truncated.parquet");
        Files.write(truncated, Arrays.copyOf(bytes, bytes.length / 2));
        Path garbage = dir.resolve("garbage.parquet");
        Files.writeString(garbage, "this is not parquet at all, just text pretending to be a file");
        Path tiny = dir.resolve("tiny.parquet");
        Files.write(tiny, new byte[] {'P', 'A', 'R'});
        expect(truncated, "text", "corrupt or truncated");
        expect(garbage, "text", "corrupt or truncated");
        expect(tiny, "text", "truncated");
        expect(good, "content", "has no column 'content'");
        expect(good, "id", "expected a string, or a list of int32 or int64");
        Path emptyDir = Files.createDirectories(dir.resolve("empty"));
        expect(emptyDir, "text", "holds no .parquet files");
        Path empty = writeText(dir.resolve("empty.parquet"), List.of(), CompressionCodecName.SNAPPY);
        try (DocumentSource s = Sources.open(empty.toString(), "text")) {
            InputException e = assertThrows(InputException.class,
                    () -> PreparedDataset.prepare(s, TOK, 16, 1, 0.1, 50, dir.resolve("p")));
            assertTrue(e.getMessage().contains("no complete training sequence"), e.getMessage());
        }
        assertFalse(Files.exists(dir.resolve("p").resolve(PreparedDataset.MANIFEST)));
        Path bad = dir.resolve("bad-manifest");
        Files.createDirectories(bad);
        Files.writeString(bad.resolve(PreparedDataset.MANIFEST), "{\"format\": 2, \"splits\": {\"train\": {\"shards\": "
                + "[{\"file\": \"train-00000.parquet\", \"rows\": 1, \"bytes\": 10, \"sha256\": \"" + "0".repeat(64) + "\"}]}}}");
        InputException e = assertThrows(InputException.class, () -> PreparedDataset.open(bad));
        assertTrue(e.getMessage().contains("train-00000.parquet, which is missing"), e.getMessage());
    }

    private static void expect(Path file, String column, String fragment) {
        InputException e = assertThrows(InputException.class, () -> Sources.open(file.toString(), column).close());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    @Test
    void europarlEnglishIsRealText() {
        List<String> docs = readAll(new EuroparlCorpus());
        assertEquals(1267, docs.size());
        long bytes = docs.stream().mapToLong(d -> d.getBytes(java.nio.charset.StandardCharsets.UTF_8).length).sum();
        assertTrue(bytes > 1_000_000 && bytes < 1_400_000, "about 1.3 MB of English: " + bytes);
        assertTrue(docs.stream().anyMatch(d -> d.contains("Commission")));
    }

    @Test
    void promptResponseDataCarriesALossMaskThroughPacking(@TempDir Path dir) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 60; i++) {
            sb.append("{\"q\": \"Question ").append(i).append("?\", \"a\": \"Answer ").append(i).append(".\"}\n");
        }
        Path f = dir.resolve("inst.jsonl");
        Files.writeString(f, sb);
        PreparedDataset ds;
        try (DocumentSource s = Sources.open(f.toString(), "q", "a")) {
            assertTrue(s.pairs());
            ds = PreparedDataset.prepare(s, TOK, 24, 1, 0.1, 10, dir.resolve("p"));
        }
        assertTrue(ds.masked());
        BatchReader r = new BatchReader(ds, "train", 2, 0);
        for (int i = 0; i < 20; i++) {
            BatchReader.Batch b = r.nextBatch();
            for (int j = 0; j < 2; j++) {
                String text = TOK.decode(b.rows()[j], false);
                long[] row = b.rows()[j];
                long[] m = b.masks()[j];
                assertEquals(row.length, m.length);
                // Each token's mask is 1 exactly when it belongs to an answer or is the EOS after it.
                StringBuilder learned = new StringBuilder();
                for (int t = 0; t < row.length; t++) {
                    if (m[t] == 1 && row[t] < 256) {
                        learned.append((char) row[t]);
                    }
                }
                assertFalse(learned.toString().contains("Question"), learned.toString());
                if (text.contains("Answer")) {
                    assertTrue(learned.toString().contains("nswer"), text + " -> " + learned);
                }
            }
        }
        try (DocumentSource s = Sources.open(f.toString(), "q", "missing")) {
            assertThrows(InputException.class, s::next);
        }
    }
}
