package molt.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
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
 * sequence length, the seed, the validation fraction and the counts. The manifest is written last, after every
 * shard is in place, so a directory without one is an interrupted preparation and is redone.
 *
 * <p>The split is by document: each document goes to validation with probability {@code valFraction}, decided by
 * a hash of (seed, document index), so no text is ever in both splits.
 */
public final class PreparedDataset {
    private static final Logger LOG = LogManager.getLogger(PreparedDataset.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String MANIFEST = "manifest.json";
    static final int FORMAT = 1;

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

    private final Path dir;
    private final ObjectNode manifest;

    private PreparedDataset(Path dir, ObjectNode manifest) {
        this.dir = dir;
        this.manifest = manifest;
    }

    /**
     * Prepares {@code out} from a source, or reuses it when its manifest matches; a directory prepared with other
     * settings is refused (the error lists what differs).
     */
    public static PreparedDataset prepare(DocumentSource source, TextTokenizer tokenizer, int seqLen, long seed,
                                          double valFraction, int rowsPerShard, Path out) throws IOException {
        Spec spec = new Spec(source.identity(), tokenizer.identity(), seqLen, seed, valFraction);
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
        Files.createDirectories(out);
        long eos = tokenizer.eosId();
        if (eos < 0) {
            throw new InputException("the tokenizer has no EOS token to separate documents");
        }
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
        return new PreparedDataset(out, m);
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
            sinks.get(split).names.forEach(shards::add);
        }
        return m;
    }

    /** Deterministic document-level split. */
    static boolean isValidation(long seed, long index, double valFraction) {
        return valFraction > 0 && new SplittableRandom(seed * 0x9E3779B97F4A7C15L + index).nextDouble() < valFraction;
    }

    /** Opens a prepared directory, checking its manifest and that every shard it lists exists. */
    public static PreparedDataset open(Path dir) {
        Path mf = dir.resolve(MANIFEST);
        JsonNode n;
        try {
            n = JSON.readTree(Files.readString(mf));
        } catch (java.nio.file.NoSuchFileException e) {
            throw new InputException(dir, "is not a prepared dataset (no " + MANIFEST + "; run 'molt data prepare')");
        } catch (IOException e) {
            throw new InputException(mf, "not valid JSON: " + JsonErrors.describe(e));
        }
        if (n == null || !n.isObject() || n.path("format").asInt() != FORMAT || !n.path("splits").isObject()) {
            throw new InputException(mf, "not a molt dataset manifest (format " + FORMAT + ")");
        }
        PreparedDataset ds = new PreparedDataset(dir, (ObjectNode) n);
        for (String split : List.of("train", "val")) {
            for (Path p : ds.shards(split)) {
                if (!Files.isRegularFile(p)) {
                    throw new InputException(mf, "lists shard " + p.getFileName() + ", which is missing");
                }
            }
        }
        return ds;
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

    public long sequences(String split) {
        return manifest.path("splits").path(split).path("sequences").asLong();
    }

    public List<Path> shards(String split) {
        List<Path> out = new ArrayList<>();
        manifest.path("splits").path(split).path("shards").forEach(s -> out.add(dir.resolve(s.asText())));
        return out;
    }

    /** Collects rows and writes a shard every {@code rowsPerShard} rows. */
    private static final class ShardSink {
        private final Path dir;
        private final String split;
        private final int rowsPerShard;
        private final boolean masked;
        private final List<long[]> buffer = new ArrayList<>();
        private final List<byte[]> masks = new ArrayList<>();
        private final List<String> names = new ArrayList<>();
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
            String name = String.format("%s-%05d.parquet", split, names.size());
            try {
                SequenceShards.write(dir.resolve(name), buffer, masked ? masks : null, CompressionCodecName.ZSTD);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            names.add(name);
            buffer.clear();
            masks.clear();
        }
    }
}
