package molt.pipeline.run;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The live progress line: its text, and log lines that clear it and have it drawn again below them. */
class ProgressTest {
    @Test
    void theLineShowsStageBarStepLossRateAndEta() {
        assertEquals("transfer [#####.....] 5/10 loss 1.2346 1000 tok/s ETA 1m15s",
                Progress.line("transfer", 5, 10, 1.23456, 1000, 75, 10));
        assertEquals("x [..........] 0/0 loss NaN 0 tok/s ETA -", Progress.line("x", 0, 0, Double.NaN, 0, Double.NaN, 10));
        assertEquals("45s", Progress.duration(45));
        assertEquals("12m05s", Progress.duration(725));
        assertEquals("3h07m", Progress.duration(11220));
    }

    @Test
    void logLinesClearTheBarWhichIsDrawnAgainBelowThem() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        Progress.BarStream s = new Progress.BarStream(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        String clear = "\r\033[K";
        s.show("bar 1");
        s.write("12:00:00 INFO step 1\n".getBytes(StandardCharsets.UTF_8), 0, 21);
        s.show("bar 2");
        s.write("partial ".getBytes(StandardCharsets.UTF_8), 0, 8); // no bar while a line is unfinished
        s.write("line\n".getBytes(StandardCharsets.UTF_8), 0, 5);
        s.show("");
        assertEquals("bar 1" + clear + "12:00:00 INFO step 1\n" + "bar 1" + clear + "bar 2" + clear + "partial "
                + "line\n" + "bar 2" + clear, bytes.toString(StandardCharsets.UTF_8));
    }
}
