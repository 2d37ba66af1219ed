package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import molt.teacher.InputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Self times from a hand-written Chrome trace, worked out by hand. */
class TraceSummaryTest {

    @Test
    void selfTimeIsDurationLessDirectChildrenPerThread(@TempDir Path dir) throws Exception {
        // thread 1: linear [0, 100) calls mm [10, 70), which calls copy_ [20, 30); then mul [100, 105).
        // thread 2: mm [0, 40) with nothing nested (it overlaps thread 1's ops in time, but is not their child).
        // A counter event ("ph": "C") is ignored.
        Path trace = dir.resolve("t.json");
        Files.writeString(trace, """
                [
                {"name": "aten::linear", "ph": "X", "ts": 0, "dur": 100, "pid": "CPU Functions", "tid": 1},
                {"name": "aten::mm", "ph": "X", "ts": 10, "dur": 60, "pid": "CPU Functions", "tid": 1},
                {"name": "aten::copy_", "ph": "X", "ts": 20, "dur": 10, "pid": "CPU Functions", "tid": 1},
                {"name": "aten::mul", "ph": "X", "ts": 100, "dur": 5, "pid": "CPU Functions", "tid": 1},
                {"name": "aten::mm", "ph": "X", "ts": 0, "dur": 40, "pid": "CPU Functions", "tid": 2},
                {"name": "memory", "ph": "C", "ts": 5, "pid": "CPU Functions", "tid": 1}
                ]
                """);
        TraceSummary t = TraceSummary.read(trace);
        assertEquals(145.0, t.totalMicros(), 1e-9); // linear 100 + mul 5 on thread 1, mm 40 on thread 2
        assertEquals(List.of(new TraceSummary.Op("aten::mm", 2, 90.0), new TraceSummary.Op("aten::linear", 1, 40.0),
                new TraceSummary.Op("aten::copy_", 1, 10.0), new TraceSummary.Op("aten::mul", 1, 5.0)), t.ops());
        List<String> lines = t.lines(2);
        assertEquals(5, lines.size()); // header, two ops, the rest, the total
        assertEquals(true, lines.get(3).contains("(2 other ops)"), lines.toString());
    }

    @Test
    void refusesWhatIsNotATrace(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("x.json");
        Files.writeString(f, "{\"a\": 1}");
        InputException e = assertThrows(InputException.class, () -> TraceSummary.read(f));
        assertEquals(true, e.getMessage().contains(f.toString()), e.getMessage());
    }
}
