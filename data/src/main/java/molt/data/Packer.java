package molt.data;

import java.util.function.Consumer;
import molt.teacher.InputException;
import molt.teacher.tokenizer.TextTokenizer;

/**
 * Packs documents into fixed-length training sequences: each document's tokens followed by EOS, concatenated, and
 * cut into rows of {@code seqLen + 1} tokens (inputs are tokens 0..seqLen-1, next-token targets 1..seqLen).
 * Consecutive rows share one token, so every token of the stream is a target exactly once; a final partial row is
 * dropped.
 */
public final class Packer {
    private final int seqLen;
    private final long eos;
    private final int vocab;
    private final Consumer<long[]> sink;
    private final long[] row;
    private int fill;
    private long documents;
    private long tokens;

    public Packer(int seqLen, long eos, int vocab, Consumer<long[]> sink) {
        if (seqLen < 1) {
            throw new IllegalArgumentException("seq_len must be >= 1, found " + seqLen);
        }
        this.seqLen = seqLen;
        this.eos = eos;
        this.vocab = vocab;
        this.sink = sink;
        this.row = new long[seqLen + 1];
    }

    /** Tokenizes (when needed) and appends one document followed by EOS. */
    public void add(Document d, TextTokenizer tokenizer) {
        long[] ids = d.ids() != null ? d.ids() : tokenizer.encode(d.text(), false);
        documents++;
        for (long id : ids) {
            if (id < 0 || id >= vocab) {
                throw new InputException("token id " + id + " in document " + documents + " is outside the vocabulary [0, "
                        + vocab + ")");
            }
            push(id);
        }
        push(eos);
    }

    private void push(long id) {
        row[fill++] = id;
        tokens++;
        if (fill == seqLen + 1) {
            sink.accept(row.clone());
            row[0] = row[seqLen];
            fill = 1;
        }
    }

    public long documents() {
        return documents;
    }

    public long tokens() {
        return tokens;
    }
}
