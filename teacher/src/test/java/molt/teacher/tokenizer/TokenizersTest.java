package molt.teacher.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import molt.teacher.InputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizersTest {
    private static final List<String> TEXTS = List.of(
            "", "a", "Hello, world!", "  leading and trailing spaces  ", "tabs\tand\nnewlines\r\n",
            "Europäisches Parlament — séance", "日本語のテキスト", "emoji 🙂🚀 mixed", "literal <|bos|> and <|eos|> markers",
            "x".repeat(3000));

    @Test
    void byteTokenizerEncodesUtf8BytesAndMarkers() {
        ByteTokenizer t = new ByteTokenizer();
        assertArrayEquals(new long[] {256, 'h', 'i'}, t.encode("hi", true));
        assertArrayEquals(new long[] {0xc3, 0xa9}, t.encode("é", false));
        assertArrayEquals(new long[] {'a', 257, 'b'}, t.encode("a<|eos|>b", false));
        assertEquals("a<|eos|>b", t.decode(new long[] {'a', 257, 'b'}, false));
        assertEquals("ab", t.decode(new long[] {256, 'a', 257, 'b'}, true));
        assertEquals(258, t.vocabSize());
    }

    @Test
    void savedTokenizerJsonEncodesExactlyLikeTheByteTokenizer(@TempDir Path dir) throws Exception {
        ByteTokenizer bytes = new ByteTokenizer();
        bytes.save(dir);
        try (HfTokenizer hf = HfTokenizer.load(dir.resolve("tokenizer.json"))) {
            Random r = new Random(1);
            List<String> texts = new java.util.ArrayList<>(TEXTS);
            for (int i = 0; i < 20; i++) {
                StringBuilder sb = new StringBuilder();
                for (int j = 0; j < 40; j++) {
                    int cp = r.nextInt(4) == 0 ? 0x20 + r.nextInt(0x2fff) : 0x20 + r.nextInt(0x5f);
                    if (Character.isSurrogate((char) cp)) {
                        continue;
                    }
                    sb.appendCodePoint(cp);
                }
                texts.add(sb.toString());
            }
            for (String s : texts) {
                for (boolean special : new boolean[] {true, false}) {
                    long[] want = bytes.encode(s, special);
                    assertArrayEquals(want, hf.encode(s, special), "encoding of '" + s + "' special=" + special);
                    assertEquals(bytes.decode(want, true), hf.decode(want, true), "decoding of '" + s + "'");
                }
            }
            assertEquals(3001, hf.encode("x".repeat(3000), true).length, "no truncation at 512");
            assertEquals(258, hf.vocabSize());
        }
        assertInstanceOf(ByteTokenizer.class, Tokenizers.load(dir));
        assertEquals(bytes.identity(), Tokenizers.load(dir).identity());
    }

    @Test
    void missingTokenizerIsAnInputError(@TempDir Path dir) throws Exception {
        InputException e = assertThrows(InputException.class, () -> Tokenizers.load(dir));
        // No option named here: only the commands that take --tokens suggest it (data prepare, eval and run do not).
        assertTrue(e.getMessage().contains("has no tokenizer.json") && !e.getMessage().contains("--"), e.getMessage());
        Files.writeString(dir.resolve("tokenizer.json"), "{not json");
        e = assertThrows(InputException.class, () -> Tokenizers.load(dir));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
    }

    @Test
    void tokenizerFilesMoltCannotUseAreInputErrors(@TempDir Path dir) throws Exception {
        String[] bad = {"", "[]", "{\"model\": 5}", "{\"model\": {\"type\": \"NoSuchModel\"}}",
            "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": 7}}"};
        for (String json : bad) {
            Files.writeString(dir.resolve("tokenizer.json"), json);
            InputException e = assertThrows(InputException.class, () -> Tokenizers.load(dir), json);
            assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
        }
    }
}
