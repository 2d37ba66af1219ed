package molt.pipeline.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import molt.teacher.LlamaConfig;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;

class DecodeThreadsTest {

    private static LlamaConfig width(int hidden) {
        return LlamaConfig.fromJson(TinyCheckpoints.builder().hidden(hidden).heads(hidden / 32, hidden / 32)
                .intermediate(hidden * 2).configJson(), Path.of("test"));
    }

    @Test
    void narrowModelsDecodeOnOneThreadWideOnesOnEveryCore() {
        assertEquals(1, DecodeThreads.choose(width(128), 2));
        assertEquals(1, DecodeThreads.choose(width(128), 16));
        assertEquals(1, DecodeThreads.choose(width(DecodeThreads.WIDE_HIDDEN - 32), 16));
        assertEquals(16, DecodeThreads.choose(width(DecodeThreads.WIDE_HIDDEN), 16));
        assertEquals(2, DecodeThreads.choose(width(8192), 2));
        assertEquals(1, DecodeThreads.choose(width(2048), 2));
        assertEquals(1, DecodeThreads.choose(width(8192), 1));
        assertTrue(DecodeThreads.reason(width(128), 2).contains("one thread"));
    }

    @Test
    void anOverrideIsSetAndTheCountBeforeRestored() {
        int before = DecodeThreads.current();
        int other = before == 1 ? 2 : 1;
        try (DecodeThreads.Scope s = DecodeThreads.use(width(128), other)) {
            assertEquals(other, s.threads());
            assertEquals(other, DecodeThreads.current());
        }
        assertEquals(before, DecodeThreads.current());
        assertThrows(molt.teacher.InputException.class, () -> DecodeThreads.use(width(128), 0));
    }
}
