package molt.pipeline;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Guards the rule molt.teacher.nd.Scalars explains: no NDArray arithmetic with a Java number where autograd may
 * record it (DJL backs the number with a Java buffer that is freed before backward reads it). Flags calls such as
 * {@code x.mul(0.5f)}, {@code x.div((float) t)} or {@code x.maximum(EPS)} in the model, mixer and training code;
 * AdamW (which updates outside any gradient collector) is exempt.
 */
class NoJavaScalarsTest {
    private static final Pattern NUMBER_OP = Pattern.compile(
            "\\.(mul|div|maximum|minimum|pow)\\(\\s*(\\((float|double|int|long)\\)|-?[0-9][0-9.eE+-]*[fFdDlL]?\\s*\\)|-?[A-Z][A-Z_0-9]*\\s*\\)|scale\\)|eps\\)|accumulation\\(\\))");

    @Test
    void recordedArithmeticNeverTakesAJavaNumber() throws Exception {
        List<String> found = new ArrayList<>();
        for (String module : new String[] {"teacher", "student", "pipeline"}) {
            try (Stream<Path> files = Files.walk(Path.of("..", module, "src", "main", "java"))) {
                for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                    if (f.getFileName().toString().equals("AdamW.java")) {
                        continue;
                    }
                    List<String> lines = Files.readAllLines(f);
                    for (int i = 0; i < lines.size(); i++) {
                        if (NUMBER_OP.matcher(lines.get(i)).find()) {
                            found.add(f.getFileName() + ":" + (i + 1) + ": " + lines.get(i).trim());
                        }
                    }
                }
            }
        }
        assertTrue(found.isEmpty(), "use Scalars.of(...) instead:\n" + String.join("\n", found));
    }
}
