package molt.pipeline.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import molt.teacher.InputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Configs that would run but report something untrue are refused, naming the file, line and key. */
class ConfigErrorsTest {
    private static String stages(String... types) {
        StringBuilder b = new StringBuilder("name: t\nteacher:\n  path: /models/x\nstages:\n");
        for (String t : types) {
            b.append("  - name: s_").append(t).append("\n    type: ").append(t).append("\n");
            if (t.equals("attention_transfer") || t.equals("lora_finetune")) {
                b.append("    tokens: 1000\n");
            }
        }
        return b.toString();
    }

    private static String error(Path dir, String yaml, String... sets) throws Exception {
        Path f = Files.writeString(dir.resolve("c.yaml"), yaml);
        InputException e = assertThrows(InputException.class, () -> ConfigLoader.load(f, List.of(sets)));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().startsWith(f + ":"), "names the file and line: " + e.getMessage());
        return e.getMessage();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "export, attention_transfer, lora_finetune | stages[0]: export stage 's_export' must come after the last training",
        "lora_finetune, attention_transfer, export | stages[1]: attention_transfer stage 's_attention_transfer' must come before",
        "attention_transfer, export, lora_finetune | stages[1]: export stage 's_export' must come after the last training",
        "attention_transfer, export, data_prepare | stages[0]: attention_transfer stage 's_attention_transfer' must come after the data_prepare",
        "attention_transfer, evaluate, export | stages[1]: evaluate stage 's_evaluate' must come after an export",
        "lora_finetune, evaluate | stages[1]: evaluate stage 's_evaluate' must come after an export"})
    void stagesOutOfOrderAreRefused(String order, String expected, @TempDir Path dir) throws Exception {
        String msg = error(dir, stages(order.split(",\\s*")));
        assertTrue(msg.contains(expected), msg);
    }

    @Test
    void theOrdersThatMakeSenseLoad(@TempDir Path dir) throws Exception {
        for (String order : new String[] {"data_prepare, attention_transfer, lora_finetune, export, evaluate",
            "lora_finetune, export", "attention_transfer, export, evaluate", "attention_transfer, lora_finetune, export"}) {
            Path f = Files.writeString(dir.resolve("ok.yaml"), stages(order.split(",\\s*")));
            assertEquals(order.split(",").length, ConfigLoader.load(f, List.of()).stages().size());
        }
    }

    @ParameterizedTest(name = "{0}: {1}")
    @CsvSource(delimiter = '|', value = {
        "seed | 18446744073709551616", "seed | 1e30", "tokens | 18446744073709551621",
        "tokens | 9223372036854775808", "seq_len | 4294967297", "every_steps | -9223372036854775809"})
    void integersBeyondSixtyFourBitsAreRefusedNotWrapped(String key, String value, @TempDir Path dir) throws Exception {
        String yaml = switch (key) {
            case "seed" -> stages("attention_transfer", "export") + "seed: " + value + "\n";
            case "tokens" -> stages("attention_transfer", "export").replace("tokens: 1000", "tokens: " + value);
            case "seq_len" -> stages("attention_transfer", "export") + "data:\n  seq_len: " + value + "\n";
            default -> stages("attention_transfer", "export") + "checkpoint:\n  every_steps: " + value + "\n";
        };
        String msg = error(dir, yaml);
        assertTrue(msg.contains(key + ": expected an integer in"), msg);
        assertTrue(msg.contains(value) || msg.contains(String.valueOf(Double.parseDouble(value))),
                "quotes the value: " + msg);
    }

    @Test
    void layerListsOutsideIntRangeOrNegativeAreRefused(@TempDir Path dir) throws Exception {
        String base = stages("attention_transfer", "export");
        assertTrue(error(dir, base + "student:\n  softmax_layers: [4294967296]\n").contains("student.softmax_layers"));
        assertTrue(error(dir, base + "student:\n  softmax_layers: [-1]\n").contains("layer indices >= 0"));
        assertTrue(error(dir, base + "student:\n  layers: {-2: hedgehog}\n").contains("layer index"));
    }

    @Test
    void anEmptyConfigNamesItsFile(@TempDir Path dir) throws Exception {
        for (String yaml : new String[] {"", "# only a comment\n", "name: t\n"}) {
            Path f = Files.writeString(dir.resolve("empty.yaml"), yaml);
            InputException e = assertThrows(InputException.class, () -> ConfigLoader.load(f, List.of()));
            assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
        }
    }

    @Test
    void aPlanThatDoesNotFitTheTeacherNamesTheStudentSection(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("plan.yaml"), stages("attention_transfer", "export")
                + "student:\n  softmax_layers: [7]\n  layers: {9: hedgehog}\n");
        RunConfig c = ConfigLoader.load(f, List.of());
        InputException e = assertThrows(InputException.class, () -> c.student().plan(4));
        assertTrue(e.getMessage().startsWith(f + ":") && e.getMessage().contains("student")
                && e.getMessage().contains("softmax_layers names layer 7"), e.getMessage());
    }

    @Test
    void aTeacherTooLargeToPretrainIsRefusedBeforeAnythingIsAllocated(@TempDir Path dir) throws Exception {
        String yaml = """
                name: big
                output_dir: %s
                data: {source: europarl-en, seq_len: 64}
                stages:
                  - {name: pretrain, type: teacher_pretrain, hidden: %d, layers: %d, heads: 8, intermediate: %d, tokens: 1000}
                """;
        int[][] sizes = {{65536, 1024, 1 << 20}, {16384, 1024, 65536}, {8192, 512, 32768}};
        for (int[] s : sizes) {
            Path f = Files.writeString(dir.resolve("big.yaml"), yaml.formatted(dir.resolve("run"), s[0], s[1], s[2]));
            molt.pipeline.cli.CliTestSupport.Run r = molt.pipeline.cli.CliTestSupport.run("validate", f.toString());
            assertEquals(2, r.exit(), r.err());
            assertTrue(r.err().contains("teacher_pretrain:"), r.err());
            assertFalse(Files.exists(dir.resolve("run")), "nothing written");
        }
    }
}
