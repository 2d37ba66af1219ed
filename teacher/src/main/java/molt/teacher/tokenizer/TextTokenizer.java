package molt.teacher.tokenizer;

/**
 * Text to token ids and back. Implementations never truncate silently: a text of any length encodes whole.
 */
public interface TextTokenizer {

    /** Encodes text; {@code addSpecialTokens} adds what the tokenizer's post-processor adds (e.g. BOS). */
    long[] encode(String text, boolean addSpecialTokens);

    /** Decodes ids to text, skipping special tokens when asked. */
    String decode(long[] ids, boolean skipSpecialTokens);

    /** Size of the id space (largest id + 1). */
    int vocabSize();

    /** BOS id, or -1 when the tokenizer has none. */
    long bosId();

    /** EOS id, or -1 when the tokenizer has none. */
    long eosId();

    /** A stable identity for manifests and caches: the SHA-256 of the tokenizer's defining file. */
    String identity();
}
