package molt.data;

/** A stream of documents, read lazily so datasets larger than memory stream with flat memory. */
public interface DocumentSource extends AutoCloseable {

    /** The next document, or null at the end. */
    Document next();

    /**
     * What this source is, for manifests: its kind, location and what identifies its content (file sizes and
     * modification times, or a built-in corpus' name and version).
     */
    String identity();

    /**
     * Where the documents are read from (a file or a folder), or null for a built-in corpus: a prepared dataset is
     * never written there.
     */
    default java.nio.file.Path location() {
        return null;
    }

    /** True when documents are prompt/response pairs (prepared datasets then store a loss mask). */
    default boolean pairs() {
        return false;
    }

    @Override
    void close();
}
