package molt.data;

import java.util.function.Consumer;
import molt.teacher.InputException;
import molt.teacher.tokenizer.TextTokenizer;

/**
 * Packs documents into fixed-length training sequences: each document's tokens followed by EOS, concatenated, and
 * cut into rows of {@code seqLen + 1} tokens (inputs are tokens 0..seqLen-1, next-token targets 1..seqLen).
 * Consecutive rows share one token, so every token of the stream is a target exactly once; a final partial row is
 * dropped. Each token also carries a loss mask: 1 for tokens a model should learn to predict, 0 for prompt tokens
 * of instruction data (prompt/response documents), so prompt/response masking survives packing.
 */
public final class Packer {
    private final int seqLen;
    private final long eos;
    private final int vocab;
    private final Sink sink;
    private final long[] row;
    private final byte[] mask;
    private int fill;
    private long documents;
    private long tokens;

    /** Receives each packed row and its loss mask (both of length seqLen + 1). */
    @FunctionalInterface
    public interface Sink {
        void accept(long[] row, byte[] mask);
    }

    public Packer(int seqLen, long eos, int vocab, Consumer<long[]> rows) {
        this(seqLen, eos, vocab, (r, m) -> rows.accept(r));
    }

    public Packer(int seqLen, long eos, int vocab, Sink sink) {
        if (seqLen < 1 || seqLen > PreparedDataset.MAX_SEQ_LEN) {
            throw new IllegalArgumentException("seq_len must be in 1.." + PreparedDataset.MAX_SEQ_LEN + ", found "
                    + seqLen);
        }
        this.seqLen = seqLen;
        this.eos = eos;
        this.vocab = vocab;
        this.sink = sink;
        this.row = new long[seqLen + 1];
        this.mask = new byte[seqLen + 1];
    }

    /** Tokenizes (when needed) and appends one document followed by EOS. */
    public void add(Document d, TextTokenizer tokenizer) {
        documents++;
        if (d.prompt() != null) {
            push(check(tokenizer.encode(d.prompt(), false)), (byte) 0);
            push(check(tokenizer.encode(d.response(), false)), (byte) 1);
        } else {
            push(check(d.ids() != null ? d.ids() : tokenizer.encode(d.text(), false)), (byte) 1);
        }
        push(eos, (byte) 1);
    }

    private long[] check(long[] ids) {
        for (long id : ids) {
            if (id < 0 || id >= vocab) {
                throw new InputException("token id " + id + " in document " + documents + " is outside the vocabulary [0, "
                        + vocab + ")");
            }
        }
        return ids;
    }

    private void push(long[] ids, byte m) {
        for (long id : ids) {
            push(id, m);
        }
    }

    private void push(long id, byte m) {
        row[fill] = id;
        mask[fill++] = m;
        tokens++;
        if (fill == seqLen + 1) {
            sink.accept(row.clone(), mask.clone());
            row[0] = row[seqLen];
            mask[0] = mask[seqLen];
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
