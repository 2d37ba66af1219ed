package molt.teacher.model;

/** A mixer's decoding state; its size must not grow with the number of tokens seen. */
public interface AttentionState extends AutoCloseable {

    /** Bytes of memory the state holds. */
    long bytes();

    @Override
    void close();
}
