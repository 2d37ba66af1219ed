package molt.data;

/**
 * One document of a dataset: its text, its token ids when the dataset is pre-tokenized, or a prompt and a
 * response for instruction data (the loss is then taken on the response only). Unused fields are null.
 */
public record Document(String text, long[] ids, String prompt, String response) {

    public static Document ofText(String text) {
        return new Document(text, null, null, null);
    }

    public static Document ofIds(long[] ids) {
        return new Document(null, ids, null, null);
    }

    public static Document ofPair(String prompt, String response) {
        return new Document(null, null, prompt, response);
    }
}
