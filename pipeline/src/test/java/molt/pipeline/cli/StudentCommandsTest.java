package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.nio.file.Path;
import java.util.List;
import molt.student.StudentCheckpoint;
import molt.student.StudentModel;
import molt.student.StudentPlan;
import molt.student.lora.LoraConfig;
import molt.student.mixer.MixerSettings;
import molt.teacher.io.SafetensorsFile;
import molt.teacher.model.LlamaModel;
import molt.teacher.testing.TinyCheckpoints;
import molt.teacher.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StudentCommandsTest {
    @TempDir
    static Path tmp;
    static Path student;

    @BeforeAll
    static void export() throws Exception {
        Path teacher = TinyCheckpoints.builder().layers(2).vocab(ByteTokenizer.VOCAB).write(tmp.resolve("teacher"));
        new ByteTokenizer().save(teacher);
        student = tmp.resolve("student");
        try (StudentModel s = StudentModel.create(LlamaModel.load(teacher, Device.cpu()), teacher,
                new StudentPlan(List.of("hedgehog_window", "hedgehog")), new MixerSettings(4, 4, 8, -2.197))) {
            s.enableLora(LoraConfig.lolcatsDefaults(), 3);
            StudentCheckpoint.export(s, student, false, null, null);
        }
    }

    @Test
    void logitsRunOnAStudentInBothModes() {
        Path par = tmp.resolve("par.safetensors");
        Path rec = tmp.resolve("rec.safetensors");
        assertEquals(0, CliTestSupport.run("logits", "--model", student.toString(), "--text", "abcdefghijkl",
                "--out", par.toString()).exit());
        CliTestSupport.Run r = CliTestSupport.run("logits", "--model", student.toString(), "--text", "abcdefghijkl",
                "--out", rec.toString(), "--mode", "recurrent");
        assertEquals(0, r.exit(), r.err());
        try (SafetensorsFile a = SafetensorsFile.open(par); SafetensorsFile b = SafetensorsFile.open(rec)) {
            assertArrayEquals(new long[] {13, ByteTokenizer.VOCAB}, a.info("logits").shape());
            float[] x = a.readFloats("logits");
            float[] y = b.readFloats("logits");
            double num = 0;
            double den = 0;
            for (int i = 0; i < x.length; i++) {
                num += (x[i] - y[i]) * (double) (x[i] - y[i]);
                den += x[i] * (double) x[i];
            }
            assertTrue(Math.sqrt(num / den) < 1e-4, "parallel vs recurrent");
        }
    }

    @Test
    void generateAndInspectWorkOnAStudent() {
        CliTestSupport.Run g = CliTestSupport.run("generate", "--model", student.toString(), "--prompt", "ab",
                "--max-tokens", "5");
        assertEquals(0, g.exit(), g.err());
        assertTrue(g.err().contains("tokens/s"));
        CliTestSupport.Run i = CliTestSupport.run("inspect", "--model", student.toString());
        assertEquals(0, i.exit(), i.err());
        assertTrue(i.out().contains("hedgehog_window"), i.out());
        assertTrue(i.out().contains("adapters"), i.out());
    }
}
