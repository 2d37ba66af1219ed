package molt.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.regex.Pattern;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.JsonErrors;
import molt.teacher.tokenizer.TextTokenizer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;

/**
 * A tokenized, packed dataset on disk: Parquet shards of sequences ({@code train-00000.parquet}, ...,
 * {@code val-00000.parquet}, ...) and {@code manifest.json} naming the source, the tokenizer's identity, the
 * sequence length, the seed, the validation fraction, the counts, and each shard's rows, size and SHA-256.
 *
 * <p>molt writes its marker ({@link OutputDirectory#MARKER}) into the directory before any shard, and the manifest
 * last, after every shard is in place: a directory with the marker and no manifest is an interrupted preparation,
 * which is redone; a non-empty directory with neither is not molt's and is refused untouched. Every read of a shard
 * checks its SHA-256 against the manifest first.
 *
 * <p>The split is by document: each document goes to validation with probability {@code valFraction}, decided by
 * a hash of (seed, document index), so no text is ever in both splits.
 */
public final class PreparedDataset {
    private static final Logger LOG = LogManager.getLogger(PreparedDataset.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String MANIFEST = "manifest.json";
    /** Format 2: shards listed with rows, bytes and SHA-256 (format 1 listed names only). */
    static final int FORMAT = 2;
    /** The longest sequence molt prepares (tokens per row, less one), far beyond any teacher's positions. */
    public static final int MAX_SEQ_LEN = 1 << 20;
    private static final Pattern SHARD_NAME = Pattern.compile("(train|val)-\\d{5}\\.parquet");

    /** What a preparation is asked for; the manifest must match it for a dataset to be reused. */
    public record Spec(String source, String tokenizer, int seqLen, long seed, double valFraction) {
        public Spec {
            if (seqLen < 1) {
                throw new InputException("seq_len must be >= 1, found " + seqLen);
            }
            if (!(valFraction >= 0 && valFraction < 1)) {
                throw new InputException("val_fraction must be in [0, 1), found " + valFraction);
            }
        }
    }

    /** One shard as the manifest records it: its path, rows, size in bytes and SHA-256 (hex). */
    public record Shard(Path path, long rows, long bytes, String sha256) {
    }

    private final Path dir;
    private final ObjectNode manifest;
    private final Map<String, List<Shard>> shards;

    private PreparedDataset(Path dir, ObjectNode manifest, Map<String, List<Shard>> shards) {
        this.dir = dir;
        this.manifest = manifest;
        this.shards = shards;
    }

    /**
     * Checks a sequence length and a shard size before anything is allocated: at most {@link #MAX_SEQ_LEN} tokens,
     * and one shard's rows (buffered in memory while writing, and again while reading) within a quarter of this
     * JVM's maximum heap. {@code seqLenName} and {@code rowsName} are the names the user gave them (options or
     * config keys), for the message.
     */
    public static void checkSizes(int seqLen, int rowsPerShard, String seqLenName, String rowsName) {
        if (seqLen < 1 || seqLen > MAX_SEQ_LEN) {
            throw new InputException(seqLenName + ": expected 1.." + MAX_SEQ_LEN + " tokens per sequence, found "
                    + seqLen);
        }
        if (rowsPerShard < 1) {
            throw new InputException(rowsName + ": expected >= 1, found " + rowsPerShard);
        }
        long perRow = 9L * (seqLen + 1) + 64; // a long and a loss-mask byte per token, array headers
        long heap = Runtime.getRuntime().maxMemory();
        long budget = heap / 4;
        long maxRows = budget / perRow;
        if (rowsPerShard > maxRows) {
            throw new InputException(rowsName + " " + rowsPerShard + " x " + seqLenName + " " + seqLen
                    + ": one shard holds " + Sizes.bytes(perRow * rowsPerShard) + " in memory, more than a quarter of "
                    + "this JVM's maximum heap (" + Sizes.bytes(heap) + "); "
                    + (maxRows >= 1 ? "use " + rowsName + " <= " + maxRows : "lower " + seqLenName));
        }
    }

    /**
     * Prepares {@code out} from a source, or reuses it when its manifest matches; a directory prepared with other
     * settings is refused (the error lists what differs), and so is a non-empty directory molt did not prepare, an
     * output that is or contains the source, or one inside it.
     */
    public static PreparedDataset prepare(DocumentSource source, TextTokenizer tokenizer, int seqLen, long seed,
                                          double valFraction, int rowsPerShard, Path out) throws IOException {
        checkSizes(seqLen, rowsPerShard, "seq_len", "rows_per_shard");
        Spec spec = new Spec(source.identity(), tokenizer.identity(), seqLen, seed, valFraction);
        OutputDirectory.checkApart(source.location(), out);
        if (Files.isRegularFile(out.resolve(MANIFEST))) {
            PreparedDataset existing = open(out);
            List<String> diff = existing.differences(spec);
            if (!diff.isEmpty()) {
                throw new InputException(out, "holds a dataset prepared with other settings (" + String.join("; ", diff)
                        + "); choose another directory or delete it");
            }
            LOG.info("reusing prepared dataset {} ({} train / {} val sequences)", out, existing.sequences("train"),
                    existing.sequences("val"));
            return existing;
        }
        long eos = tokenizer.eosId();
        if (eos < 0) {
            throw new InputException("the tokenizer has no EOS token to separate documents");
        }
        OutputDirectory.claim(out);
        boolean masked = source.pairs();
        Map<String, ShardSink> sinks = new LinkedHashMap<>();
        sinks.put("train", new ShardSink(out, "train", rowsPerShard, masked));
        sinks.put("val", new ShardSink(out, "val", rowsPerShard, masked));
        Map<String, Packer> packers = new LinkedHashMap<>();
        for (String split : sinks.keySet()) {
            packers.put(split, new Packer(seqLen, eos, tokenizer.vocabSize(), sinks.get(split)::accept));
        }
        long index = 0;
        Document d;
        while ((d = source.next()) != null) {
            String split = isValidation(seed, index++, valFraction) ? "val" : "train";
            packers.get(split).add(d, tokenizer);
        }
        for (ShardSink s : sinks.values()) {
            s.flush();
        }
        if (sinks.get("train").rows == 0) {
            throw new InputException("data source " + source.identity() + " yields no complete training sequence of "
                    + (seqLen + 1) + " tokens (" + index + " documents)");
        }
        ObjectNode m = manifest(spec, eos, tokenizer.vocabSize(), masked, sinks, packers);
        AtomicFiles.writeString(out.resolve(MANIFEST), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(m));
        LOG.info("prepared {}: {} train / {} val sequences of {} tokens from {} documents", out,
                sinks.get("train").rows, sinks.get("val").rows, seqLen + 1, index);
        Map<String, List<Shard>> listed = new LinkedHashMap<>();
        sinks.forEach((split, s) -> listed.put(split, List.copyOf(s.shards)));
        return new PreparedDataset(out, m, listed);
    }

    /** manifest.json: the settings that made the dataset and each split's counts and shards. */
    private static ObjectNode manifest(Spec spec, long eos, int vocabSize, boolean masked,
                                       Map<String, ShardSink> sinks, Map<String, Packer> packers) {
        ObjectNode m = JSON.createObjectNode();
        m.put("format", FORMAT);
        m.put("source", spec.source());
        m.put("tokenizer", spec.tokenizer());
        m.put("seq_len", spec.seqLen());
        m.put("seed", spec.seed());
        m.put("val_fraction", spec.valFraction());
        m.put("eos_id", eos);
        m.put("vocab_size", vocabSize);
        m.put("loss_mask", masked);
        ObjectNode counts = m.putObject("splits");
        for (String split : sinks.keySet()) {
            ObjectNode c = counts.putObject(split);
            c.put("documents", packers.get(split).documents());
            c.put("tokens", packers.get(split).tokens());
            c.put("sequences", sinks.get(split).rows);
            ArrayNode shards = c.putArray("shards");
            for (Shard s : sinks.get(split).shards) {
                ObjectNode e = shards.addObject();
                e.put("file", s.path().getFileName().toString());
                e.put("rows", s.rows());
                e.put("bytes", s.bytes());
                e.put("sha256", s.sha256());
            }
        }
        return m;
    }

    /** Deterministic document-level split. */
    static boolean isValidation(long seed, long index, double valFraction) {
        return valFraction > 0 && new SplittableRandom(seed * 0x9E3779B97F4A7C15L + index).nextDouble() < valFraction;
    }

    /**
     * Opens a prepared directory, checking its manifest and that every shard it lists exists with the recorded size
     * (each shard's SHA-256 is checked when it is read). A directory with molt's marker but no manifest is reported
     * as an interrupted preparation, one prepared by an older molt (without checksums) as such.
     */
    public static PreparedDataset open(Path dir) {
        Path mf = dir.resolve(MANIFEST);
        if (!Files.isDirectory(dir)) {
            throw new InputException(dir, Files.exists(dir) ? "is a file, not a prepared dataset directory"
                    : "does not exist (no prepared dataset here; run 'molt data prepare')");
        }
        JsonNode n;
        try {
            n = JSON.readTree(Files.readAllBytes(mf));
        } catch (NoSuchFileException e) {
            if (OutputDirectory.hasMarker(dir)) {
                throw new InputException(dir, "is an interrupted or incomplete preparation (it has "
                        + OutputDirectory.MARKER + " but no " + MANIFEST + "); run 'molt data prepare' again with this "
                        + "output directory to finish it, or delete it");
            }
            throw new InputException(dir, "is not a prepared dataset (no " + MANIFEST + "; run 'molt data prepare')");
        } catch (IOException e) {
            throw new InputException(mf, "not valid JSON: " + JsonErrors.describe(e));
        }
        if (n == null || !n.isObject() || !n.path("format").canConvertToInt()) {
            throw new InputException(mf, "not a molt dataset manifest (format " + FORMAT + ")");
        }
        int format = n.path("format").asInt();
        if (format == 1) {
            n = upgradeFormat1(dir, mf, (ObjectNode) n);
        } else if (format < FORMAT) {
            throw new InputException(dir, "was prepared by an older molt (dataset format " + format
                    + "); delete it and prepare it again");
        }
        if (format > FORMAT) {
            throw new InputException(dir, "was prepared by a newer molt (dataset format " + format
                    + "; this molt reads format " + FORMAT + ")");
        }
        if (!n.path("splits").isObject()) {
            throw new InputException(mf, "not a molt dataset manifest (no \"splits\" object)");
        }
        Map<String, List<Shard>> listed = new LinkedHashMap<>();
        for (String split : List.of("train", "val")) {
            listed.put(split, shardsOf(dir, mf, split, n.path("splits").path(split)));
        }
        return new PreparedDataset(dir, (ObjectNode) n, listed);
    }

    /**
     * A dataset an older molt prepared (format 1: shard names without checksums) gets its shards' rows, sizes and
     * SHA-256s recorded as they are now, in a rewritten manifest (format 2), so run directories made before checksums
     * keep resuming. From then on every read is checked; what changed before the upgrade cannot be detected.
     */
    private static ObjectNode upgradeFormat1(Path dir, Path mf, ObjectNode n) {
        ObjectNode up = n.deepCopy();
        up.put("format", FORMAT);
        for (String split : List.of("train", "val")) {
            JsonNode names = n.path("splits").path(split).path("shards");
            if (names.isMissingNode()) {
                continue;
            }
            ArrayNode entries = JSON.createArrayNode();
            for (JsonNode name : names) {
                String file = name.isTextual() ? name.asText() : "";
                Path p = dir.resolve(file);
                if (!SHARD_NAME.matcher(file).matches() || !file.startsWith(split + "-") || !Files.isRegularFile(p)) {
                    throw new InputException(mf, "format 1 manifest: splits." + split + ".shards lists " + name
                            + ", not a shard file of this directory (damaged; delete " + dir + " and prepare it again)");
                }
                entries.addObject().put("file", file).put("rows", SequenceShards.readColumn(p, SequenceShards.COLUMN)
                        .size()).put("bytes", Checksums.size(p)).put("sha256", Checksums.sha256(p));
            }
            ((ObjectNode) up.path("splits").path(split)).set("shards", entries);
        }
        try {
            AtomicFiles.writeString(mf, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(up));
        } catch (IOException e) {
            throw new InputException(mf, "cannot upgrade the manifest: " + e.getMessage(), e);
        }
        LOG.warn("{}: prepared by an older molt without shard checksums; recorded the shards' SHA-256 as they are now",
                dir);
        return up;
    }

    private static List<Shard> shardsOf(Path dir, Path mf, String split, JsonNode s) {
        JsonNode arr = s.path("shards");
        if (s.isMissingNode() || arr.isMissingNode()) {
            return List.of();
        }
        if (!arr.isArray()) {
            throw new InputException(mf, "splits." + split + ".shards: expected an array of shards");
        }
        List<Shard> out = new ArrayList<>();
        long rows = 0;
        for (int i = 0; i < arr.size(); i++) {
            JsonNode e = arr.get(i);
            String file = e.path("file").asText("");
            if (!e.isObject() || !SHARD_NAME.matcher(file).matches() || !file.startsWith(split + "-")
                    || !e.path("rows").canConvertToLong() || e.path("rows").asLong() < 1
                    || !e.path("bytes").canConvertToLong() || e.path("bytes").asLong() < 0
                    || !Checksums.isSha256(e.path("sha256").asText(null))) {
                throw new InputException(mf, "splits." + split + ".shards[" + i + "]: expected {\"file\": \"" + split
                        + "-NNNNN.parquet\", \"rows\", \"bytes\", \"sha256\"}, found " + abbreviate(e.toString()));
            }
            Path p = dir.resolve(file);
            if (!Files.isRegularFile(p)) {
                throw new InputException(mf, "lists shard " + file + ", which is missing");
            }
            long bytes = Checksums.size(p);
            if (bytes != e.path("bytes").asLong()) {
                throw new InputException(p, "is " + bytes + " bytes, but " + MANIFEST + " records "
                        + e.path("bytes").asLong() + " (truncated or changed after molt wrote it; delete " + dir
                        + " and prepare it again)");
            }
            rows += e.path("rows").asLong();
            out.add(new Shard(p, e.path("rows").asLong(), bytes, e.path("sha256").asText()));
        }
        if (s.has("sequences") && s.path("sequences").asLong() != rows) {
            throw new InputException(mf, "splits." + split + " counts " + s.path("sequences").asLong()
                    + " sequences, but its shards hold " + rows + " (damaged manifest; delete " + dir
                    + " and prepare it again)");
        }
        return List.copyOf(out);
    }

    private static String abbreviate(String s) {
        return s.length() <= 120 ? s : s.substring(0, 117) + "...";
    }

    /** True when {@code dir} holds a manifest that reads as molt's (of any format), complete or not. */
    public static boolean isPrepared(Path dir) {
        Path mf = dir.resolve(MANIFEST);
        if (!Files.isRegularFile(mf)) {
            return false;
        }
        try {
            JsonNode n = JSON.readTree(Files.readAllBytes(mf));
            return n != null && n.isObject() && n.has("format") && n.has("splits") && n.has("tokenizer");
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Checks a shard of this dataset against the SHA-256 its manifest records (one streaming pass over the file);
     * a mismatch is an {@link InputException} naming the shard and both digests.
     */
    public void verify(Path shard) {
        for (List<Shard> list : shards.values()) {
            for (Shard s : list) {
                if (s.path().equals(shard)) {
                    Checksums.verify(shard, s.sha256(), "delete " + dir + " and prepare it again");
                    return;
                }
            }
        }
        throw new IllegalArgumentException(shard + " is not a shard of " + dir);
    }

    /**
     * Checks {@code file} against the manifest beside it when that manifest is a current molt manifest listing it
     * (how {@link SequenceShards#read} checks the shards of a prepared dataset whoever reads them).
     */
    static void verifyListed(Path file) {
        Path parent = file.toAbsolutePath().getParent();
        if (parent == null) {
            return;
        }
        Path mf = parent.resolve(MANIFEST);
        if (!Files.isRegularFile(mf)) {
            return;
        }
        JsonNode n;
        try {
            n = JSON.readTree(Files.readAllBytes(mf));
        } catch (IOException e) {
            return; // not a manifest this file can be checked against; PreparedDataset.open reports it
        }
        if (n == null || n.path("format").asInt() != FORMAT) {
            return;
        }
        String name = file.getFileName().toString();
        for (JsonNode split : n.path("splits")) {
            for (JsonNode e : split.path("shards")) {
                if (name.equals(e.path("file").asText()) && Checksums.isSha256(e.path("sha256").asText(null))) {
                    Checksums.verify(file, e.path("sha256").asText(), "delete " + parent + " and prepare it again");
                    return;
                }
            }
        }
    }

    /** Settings in which this dataset differs from {@code spec}, as "key: found X, expected Y". */
    public List<String> differences(Spec spec) {
        List<String> d = new ArrayList<>();
        compare(d, "source", manifest.path("source").asText(), spec.source());
        compare(d, "tokenizer", manifest.path("tokenizer").asText(), spec.tokenizer());
        compare(d, "seq_len", manifest.path("seq_len").asText(), String.valueOf(spec.seqLen()));
        compare(d, "seed", manifest.path("seed").asText(), String.valueOf(spec.seed()));
        compare(d, "val_fraction", String.valueOf(manifest.path("val_fraction").asDouble()),
                String.valueOf(spec.valFraction()));
        return d;
    }

    private static void compare(List<String> out, String key, String found, String expected) {
        if (!found.equals(expected)) {
            out.add(key + ": prepared with " + found + ", asked for " + expected);
        }
    }

    public Path dir() {
        return dir;
    }

    public ObjectNode manifest() {
        return manifest;
    }

    /** True when shards carry a loss mask (prompt/response data). */
    public boolean masked() {
        return manifest.path("loss_mask").asBoolean(false);
    }

    public int seqLen() {
        return manifest.path("seq_len").asInt();
    }

    /** The tokenizer's vocabulary size the dataset was prepared with. */
    public int vocabSize() {
        return manifest.path("vocab_size").asInt();
    }

    public long sequences(String split) {
        return manifest.path("splits").path(split).path("sequences").asLong();
    }

    public List<Path> shards(String split) {
        return shardFiles(split).stream().map(Shard::path).toList();
    }

    /** The shards of a split as the manifest records them. */
    public List<Shard> shardFiles(String split) {
        return shards.getOrDefault(split, List.of());
    }

    /** The most rows any one shard holds (what one shard's caches take in memory). */
    public long maxShardRows() {
        return shards.values().stream().flatMap(List::stream).mapToLong(Shard::rows).max().orElse(0);
    }

    /** Collects rows and writes a shard every {@code rowsPerShard} rows. */
    private static final class ShardSink {
        private final Path dir;
        private final String split;
        private final int rowsPerShard;
        private final boolean masked;
        private final List<long[]> buffer = new ArrayList<>();
        private final List<byte[]> masks = new ArrayList<>();
        private final List<Shard> shards = new ArrayList<>();
        private long rows;

        ShardSink(Path dir, String split, int rowsPerShard, boolean masked) {
            this.dir = dir;
            this.split = split;
            this.rowsPerShard = rowsPerShard;
            this.masked = masked;
        }

        void accept(long[] row, byte[] mask) {
            buffer.add(row);
            masks.add(mask);
            rows++;
            if (buffer.size() == rowsPerShard) {
                flush();
            }
        }

        void flush() {
            if (buffer.isEmpty()) {
                return;
            }
            Path file = dir.resolve(String.format("%s-%05d.parquet", split, shards.size()));
            try {
                String sha = SequenceShards.writeHashed(file, buffer, masked ? masks : null, CompressionCodecName.ZSTD);
                shards.add(new Shard(file, buffer.size(), Files.size(file), sha));
            } catch (IOException e) {
                throw new InputException(file, "cannot write: " + AtomicFiles.describe(e), e);
            }
            buffer.clear();
            masks.clear();
        }
    }
}
