package molt.teacher.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import molt.teacher.InputException;

/**
 * A Hugging Face {@code tokenizer.json} through DJL's tokenizers library, offline, with truncation and padding
 * off (DJL would otherwise cut every text at 512 tokens).
 */
public final class HfTokenizer implements TextTokenizer, AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HuggingFaceTokenizer tokenizer;
    private final int vocabSize;
    private final long bos;
    private final long eos;
    private final String identity;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, int vocabSize, long bos, long eos, String identity) {
        this.tokenizer = tokenizer;
        this.vocabSize = vocabSize;
        this.bos = bos;
        this.eos = eos;
        this.identity = identity;
    }

    /** Loads {@code file} (a tokenizer.json); {@code modelDir} may supply BOS/EOS through config files. */
    public static HfTokenizer load(Path file) {
        byte[] bytes;
        JsonNode root;
        try {
            bytes = Files.readAllBytes(file);
            root = JSON.readTree(bytes);
        } catch (IOException e) {
            throw new InputException(file, "cannot read tokenizer: " + molt.teacher.io.JsonErrors.describe(e));
        }
        if (root == null || !root.isObject() || !root.has("model")) {
            throw new InputException(file, "not a Hugging Face tokenizer.json (no \"model\" section)");
        }
        HuggingFaceTokenizer tok;
        try {
            tok = HuggingFaceTokenizer.newInstance(file, Map.of("truncation", "false", "padding", "false",
                    "addSpecialTokens", "true", "modelMaxLength", String.valueOf(Integer.MAX_VALUE)));
        } catch (IOException | RuntimeException e) {
            throw new InputException(file, "tokenizers library refused it: " + e.getMessage(), e);
        }
        try {
            tok.encode("probe", false, false).getIds(); // a tokenizer that loads but cannot encode fails here, not later
        } catch (RuntimeException e) {
            tok.close();
            throw new InputException(file, "tokenizers library cannot encode with it: " + e.getMessage(), e);
        }
        int maxId = -1;
        JsonNode vocab = root.path("model").path("vocab");
        if (vocab.isObject()) {
            for (JsonNode id : (Iterable<JsonNode>) vocab::elements) {
                maxId = Math.max(maxId, id.asInt());
            }
        } else if (vocab.isArray()) {
            maxId = vocab.size() - 1;
        }
        for (JsonNode t : root.path("added_tokens")) {
            maxId = Math.max(maxId, t.path("id").asInt());
        }
        Path dir = file.toAbsolutePath().getParent();
        long bos = specialId(root, dir, "bos_token", "bos_token_id");
        long eos = specialId(root, dir, "eos_token", "eos_token_id");
        return new HfTokenizer(tok, maxId + 1, bos, eos, sha256(bytes));
    }

    /** A special token's id from tokenizer_config.json (by content) or config.json (by id); -1 when unknown. */
    private static long specialId(JsonNode tokenizerJson, Path dir, String configKey, String idKey) {
        try {
            Path tc = dir.resolve("tokenizer_config.json");
            if (Files.isRegularFile(tc)) {
                JsonNode t = JSON.readTree(tc.toFile()).get(configKey);
                String content = t == null ? null : t.isTextual() ? t.asText() : t.path("content").asText(null);
                if (content != null) {
                    for (JsonNode a : tokenizerJson.path("added_tokens")) {
                        if (content.equals(a.path("content").asText())) {
                            return a.path("id").asLong();
                        }
                    }
                    JsonNode v = tokenizerJson.path("model").path("vocab").get(content);
                    if (v != null && v.isIntegralNumber()) {
                        return v.asLong();
                    }
                }
            }
            Path cfg = dir.resolve("config.json");
            if (Files.isRegularFile(cfg)) {
                JsonNode id = JSON.readTree(cfg.toFile()).get(idKey);
                if (id != null && id.isIntegralNumber()) {
                    return id.asLong();
                }
                if (id != null && id.isArray() && id.size() > 0) {
                    return id.get(0).asLong();
                }
            }
        } catch (IOException e) {
            // The ids are optional conveniences; a broken side file is reported where it is read for real.
        }
        return -1;
    }

    private static String sha256(byte[] b) {
        return molt.teacher.io.Digests.hex(b);
    }

    @Override
    public long[] encode(String text, boolean addSpecialTokens) {
        Encoding e = tokenizer.encode(text, addSpecialTokens, false);
        return e.getIds();
    }

    @Override
    public String decode(long[] ids, boolean skipSpecialTokens) {
        return tokenizer.decode(ids, skipSpecialTokens);
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public long bosId() {
        return bos;
    }

    @Override
    public long eosId() {
        return eos;
    }

    @Override
    public String identity() {
        return identity;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
