package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** {@code molt bench attention} on small lengths: a row per length with both forms and their ratio. */
class AttentionBenchTest {

    @Test
    void printsBothFormsPerLengthBesideTheGemmRate() {
        CliTestSupport.Run r = CliTestSupport.run("bench", "attention", "--lengths", "8,40", "--heads", "2",
                "--head-dim", "8", "--reps", "2", "--threads", "1");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("F32 GEMM"), r.out());
        for (String t : new String[] {"8", "40"}) {
            String row = r.out().lines().filter(l -> l.trim().startsWith(t + " ")).findFirst().orElseThrow();
            String[] f = row.trim().split("\\s+");
            assertTrue(Double.parseDouble(f[1]) > 0 && Double.parseDouble(f[2]) > 0, row);
            assertTrue(f[3].endsWith("x"), row);
        }
        assertEquals(2, CliTestSupport.run("bench", "attention", "--lengths", "0").exit());
        CliTestSupport.Run bad = CliTestSupport.run("bench", "attention", "--threads", "x");
        assertEquals(2, bad.exit());
        assertTrue(bad.err().contains("--threads: expected a number from 1 or auto, found 'x'"), bad.err());
    }
}
