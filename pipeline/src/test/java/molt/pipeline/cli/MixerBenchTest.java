package molt.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** {@code molt bench mixers} on a small shape, with its chunk-size option. */
class MixerBenchTest {

    @Test
    void timesAMixerAtAChosenChunkSizeAndRefusesOneBelowTheWindow() {
        CliTestSupport.Run r = CliTestSupport.run("bench", "mixers", "--lengths", "128", "--contexts", "16",
                "--mixers", "hedgehog_window", "--heads", "1", "--head-dim", "8", "--chunk-size", "128");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("chunk 128"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("hedgehog_window")), r.out());
        CliTestSupport.Run bad = CliTestSupport.run("bench", "mixers", "--chunk-size", "8");
        assertEquals(2, bad.exit());
        assertTrue(bad.err().contains("--chunk-size must be at least the window"), bad.err());
    }
}
