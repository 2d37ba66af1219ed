package molt.teacher.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SamplerTest {
    // Probabilities 0.5, 0.25, 0.125, 0.125 at temperature 1.
    private static final float[] LOGITS = {(float) Math.log(4), (float) Math.log(2), 0f, 0f};

    @Test
    void greedyTakesTheArgmax() {
        assertEquals(0, Sampler.greedy().next(LOGITS));
        assertEquals(2, Sampler.greedy().next(new float[] {1, 2, 5, -1}));
    }

    @Test
    void topPKeepsTheSmallestNucleus() {
        // top_p 0.7: tokens 0 and 1 (mass 0.75) are kept, 2 and 3 never drawn.
        Sampler s = new Sampler(1.0, 0.7, 42);
        int[] counts = new int[4];
        for (int i = 0; i < 20000; i++) {
            counts[s.next(LOGITS)]++;
        }
        assertEquals(0, counts[2] + counts[3]);
        double frac0 = counts[0] / 20000.0;
        assertTrue(Math.abs(frac0 - 2.0 / 3) < 0.02, "token 0 has 0.5 / 0.75 of the nucleus: " + frac0);
    }

    @Test
    void temperatureSharpensAndSeedsRepeat() {
        Sampler full = new Sampler(1.0, 1.0, 7);
        int[] counts = new int[4];
        for (int i = 0; i < 20000; i++) {
            counts[full.next(LOGITS)]++;
        }
        assertTrue(Math.abs(counts[2] / 20000.0 - 0.125) < 0.015, "tail tokens are drawn at their probability");
        Sampler cold = new Sampler(0.25, 1.0, 7);
        int zeros = 0;
        for (int i = 0; i < 2000; i++) {
            zeros += cold.next(LOGITS) == 0 ? 1 : 0;
        }
        assertTrue(zeros > 1850, "temperature 0.25 makes the top token dominant: " + zeros);
        Sampler a = new Sampler(0.9, 0.95, 3);
        Sampler b = new Sampler(0.9, 0.95, 3);
        for (int i = 0; i < 100; i++) {
            assertEquals(a.next(LOGITS), b.next(LOGITS));
        }
        assertThrows(IllegalArgumentException.class, () -> new Sampler(-1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1, 0, 0));
    }
}
