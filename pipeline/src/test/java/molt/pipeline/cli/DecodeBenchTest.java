package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.nio.file.Path;
import java.util.List;
import molt.student.StudentCheckpoint;
import molt.student.StudentModel;
import molt.student.StudentPlan;
import molt.student.mixer.MixerSettings;
import molt.teacher.model.LlamaModel;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code molt bench decode} on a tiny random teacher and a hedgehog_window student built on it. */
class DecodeBenchTest {
    @TempDir
    static Path tmp;
    static Path teacher;
    static Path student;

    @BeforeAll
    static void models() throws Exception {
        teacher = TinyCheckpoints.builder().layers(2).vocab(ByteTokenizer.VOCAB).maxPositions(128)
                .write(tmp.resolve("teacher"));
        new ByteTokenizer().save(teacher);
        student = tmp.resolve("student");
        try (StudentModel s = StudentModel.create(LlamaModel.load(teacher, Device.cpu()), teacher,
                new StudentPlan(List.of("hedgehog_window", "hedgehog_window")), new MixerSettings(4, 4, 8, -2.197))) {
            StudentCheckpoint.export(s, student, true, null, null);
        }
    }

    @Test
    void studentBesideItsTeacher() {
        CliTestSupport.Run r = CliTestSupport.run("bench", "decode", "--model", student.toString(), "--contexts",
                "48,128", "--tokens", "32", "--threads", "1", "--warmup-seconds", "2");
        assertEquals(0, r.exit(), r.err());
        String out = r.out();
        for (String column : List.of("context", "threads", "steps in", "model tok/s", "teacher tok/s",
                "model/teacher", "model state B", "teacher state B")) {
            assertTrue(out.contains(column), column + " missing in:\n" + out);
        }
        assertTrue(out.contains("warm-up with 1 thread, engine auto: model "), out);
        assertTrue(out.contains("teacher: " + teacher), out);
        List<String> rows = out.lines().filter(l -> l.startsWith("48 ") || l.startsWith("128 ")).toList();
        assertEquals(2, rows.size(), out);
        for (String row : rows) {
            String[] f = row.trim().split("\\s+");
            assertEquals(8, f.length, row);
            assertEquals("java/java", f[2], "a model this small decodes in plain Java: " + row);
            assertTrue(Double.parseDouble(f[3]) > 0 && Double.parseDouble(f[4]) > 0, row);
            // The teacher's KV cache holds every token (2 layers x k, v x 2 heads x c x 8 dims x 4 bytes); the
            // student's state does not grow with the context.
            long c = Long.parseLong(f[0]);
            assertEquals(2L * 2 * 2 * c * 8 * 4, Long.parseLong(f[7]), row);
        }
        assertEquals(rows.get(0).trim().split("\\s+")[6], rows.get(1).trim().split("\\s+")[6], out);
    }

    @Test
    void enginesSideBySideAndABadEngineIsOneLine() {
        CliTestSupport.Run r = CliTestSupport.run("bench", "decode", "--model", student.toString(), "--contexts",
                "48", "--tokens", "32", "--threads", "1", "--warmup-seconds", "1", "--engine", "djl,java");
        assertEquals(0, r.exit(), r.err());
        List<String> rows = r.out().lines().filter(l -> l.startsWith("48 ")).toList();
        assertEquals(2, rows.size(), r.out());
        assertEquals("djl/djl", rows.get(0).trim().split("\\s+")[2], r.out());
        assertEquals("java/java", rows.get(1).trim().split("\\s+")[2], r.out());
        // The same state size whichever engine steps.
        assertEquals(rows.get(0).trim().split("\\s+")[7], rows.get(1).trim().split("\\s+")[7], r.out());
        CliTestSupport.Run bad = CliTestSupport.run("bench", "decode", "--model", student.toString(), "--engine", "fast");
        assertEquals(2, bad.exit(), bad.err());
        assertEquals(1, bad.err().lines().filter(l -> !l.isBlank()).count(), bad.err());
        assertTrue(bad.err().contains("expected auto, djl or java, found 'fast'"), bad.err());
    }

    @Test
    void aTeacherAloneHasNoRatio() {
        CliTestSupport.Run r = CliTestSupport.run("bench", "decode", "--model", teacher.toString(), "--contexts",
                "64", "--tokens", "32", "--warmup-seconds", "1");
        assertEquals(0, r.exit(), r.err());
        String row = r.out().lines().filter(l -> l.startsWith("64 ")).findFirst().orElseThrow();
        assertTrue(row.contains(" - "), row);
    }

    @Test
    void aContextBeyondThePositionsIsOneLine() {
        CliTestSupport.Run r = CliTestSupport.run("bench", "decode", "--model", student.toString(), "--contexts",
                "64,129", "--tokens", "32");
        assertEquals(2, r.exit(), r.err());
        assertEquals(1, r.err().lines().filter(l -> !l.isBlank()).count(), r.err());
        assertTrue(r.err().contains("context 129 exceeds the model's max_position_embeddings 128"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void tooFewTokensForAContextIsRefused() {
        CliTestSupport.Run r = CliTestSupport.run("bench", "decode", "--model", teacher.toString(), "--contexts",
                "40", "--tokens", "32");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("too short"), r.err());
    }
}
