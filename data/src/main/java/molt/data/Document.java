package molt.data;

/** One document of a dataset: its text, or its token ids when the dataset is pre-tokenized (one is null). */
public record Document(String text, long[] ids) {

    public static Document ofText(String text) {
        return new Document(text, null);
    }

    public static Document ofIds(long[] ids) {
        return new Document(null, ids);
    }
}
