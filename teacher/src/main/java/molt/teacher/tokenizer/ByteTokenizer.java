package molt.teacher.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import molt.teacher.io.AtomicFiles;

/**
 * The tokenizer of models that molt trains itself: ids 0..255 are the bytes of the UTF-8 text, 256 is BOS
 * ({@value #BOS_TOKEN}) and 257 is EOS ({@value #EOS_TOKEN}); the vocabulary has 258 ids. The two marker strings,
 * where they appear literally in a text, encode to their ids, as Hugging Face tokenizers match added tokens.
 *
 * <p>{@link #save} writes an equivalent Hugging Face {@code tokenizer.json} (a byte-level BPE without merges whose
 * vocabulary maps GPT-2's byte characters to the byte values), so the model directory works with any tokenizers
 * implementation; {@link Tokenizers#load} recognizes the file by its exact content and uses this class again.
 */
public final class ByteTokenizer implements TextTokenizer {
    public static final int BOS = 256;
    public static final int EOS = 257;
    public static final int VOCAB = 258;
    public static final String BOS_TOKEN = "<|bos|>";
    public static final String EOS_TOKEN = "<|eos|>";
    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public long[] encode(String text, boolean addSpecialTokens) {
        java.util.List<Long> out = new java.util.ArrayList<>(text.length() + 1);
        if (addSpecialTokens) {
            out.add((long) BOS);
        }
        int i = 0;
        while (i < text.length()) {
            int bos = text.indexOf(BOS_TOKEN, i);
            int eos = text.indexOf(EOS_TOKEN, i);
            int next = bos < 0 ? eos : eos < 0 ? bos : Math.min(bos, eos);
            int end = next < 0 ? text.length() : next;
            for (byte b : text.substring(i, end).getBytes(StandardCharsets.UTF_8)) {
                out.add((long) (b & 0xff));
            }
            if (next < 0) {
                break;
            }
            out.add(next == bos ? (long) BOS : (long) EOS);
            i = next + (next == bos ? BOS_TOKEN.length() : EOS_TOKEN.length());
        }
        long[] r = new long[out.size()];
        for (int k = 0; k < r.length; k++) {
            r[k] = out.get(k);
        }
        return r;
    }

    @Override
    public String decode(long[] ids, boolean skipSpecialTokens) {
        StringBuilder sb = new StringBuilder();
        ByteArrayOutputStream run = new ByteArrayOutputStream();
        for (long id : ids) {
            if (id >= 0 && id < 256) {
                run.write((int) id);
                continue;
            }
            sb.append(new String(run.toByteArray(), StandardCharsets.UTF_8));
            run.reset();
            if (!skipSpecialTokens && (id == BOS || id == EOS)) {
                sb.append(id == BOS ? BOS_TOKEN : EOS_TOKEN);
            }
        }
        sb.append(new String(run.toByteArray(), StandardCharsets.UTF_8));
        return sb.toString();
    }

    @Override
    public int vocabSize() {
        return VOCAB;
    }

    @Override
    public long bosId() {
        return BOS;
    }

    @Override
    public long eosId() {
        return EOS;
    }

    @Override
    public String identity() {
        return molt.teacher.io.Digests.hex(tokenizerJson());
    }

    /** Writes {@code DIR/tokenizer.json} atomically. */
    public void save(Path dir) throws IOException {
        AtomicFiles.writeString(dir.resolve("tokenizer.json"), tokenizerJson());
    }

    /** GPT-2's reversible map from bytes to printable characters, used by byte-level BPE vocabularies. */
    public static char[] byteChars() {
        char[] map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char) b : (char) (256 + n++);
        }
        return map;
    }

    /** The Hugging Face tokenizer.json text (deterministic). */
    String tokenizerJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        addedToken(added, BOS, BOS_TOKEN);
        addedToken(added, EOS, EOS_TOKEN);
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", false).put("use_regex", false);
        ObjectNode post = root.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", BOS_TOKEN).put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ArrayNode pair = post.putArray("pair");
        pair.addObject().putObject("SpecialToken").put("id", BOS_TOKEN).put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode specials = post.putObject("special_tokens");
        ObjectNode bos = specials.putObject(BOS_TOKEN);
        bos.put("id", BOS_TOKEN);
        bos.putArray("ids").add(BOS);
        bos.putArray("tokens").add(BOS_TOKEN);
        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", false).put("use_regex", false);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        ObjectNode vocab = model.putObject("vocab");
        char[] chars = byteChars();
        for (int b = 0; b < 256; b++) {
            vocab.put(String.valueOf(chars[b]), b);
        }
        model.putArray("merges");
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void addedToken(ArrayNode added, int id, String content) {
        added.addObject().put("id", id).put("content", content).put("single_word", false).put("lstrip", false)
                .put("rstrip", false).put("normalized", false).put("special", true);
    }
}
