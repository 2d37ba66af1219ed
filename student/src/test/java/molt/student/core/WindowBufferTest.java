package molt.student.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The sliding window's 2w-slot buffer against a naive list of tokens: after every push (and after a prefill's fill)
 * the views hold exactly the last min(n, w) keys and values in token order, the leaving token is the oldest one,
 * and the state's array count stays flat (the buffers are written in place, through several compactions).
 */
class WindowBufferTest {
    private static final int B = 2;
    private static final int H = 3;
    private static final int D = 4;

    @ParameterizedTest(name = "w={0}, prefill={1}")
    @CsvSource({"1, 0", "4, 0", "4, 2", "4, 9", "5, 5", "7, 3"})
    void matchesANaiveWindow(int w, int prefill) {
        Random r = new Random(31L * w + prefill);
        List<float[]> keys = new ArrayList<>();
        List<float[]> values = new ArrayList<>();
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
             HedgehogState st = new HedgehogState(Device.cpu())) {
            WindowBuffer win = st.window();
            if (prefill > 0) {
                float[] k = random(r, B * H * prefill * D);
                float[] v = random(r, B * H * prefill * D);
                for (int t = 0; t < prefill; t++) {
                    keys.add(token(k, prefill, t));
                    values.add(token(v, prefill, t));
                }
                win.fill(m, m.create(k, new Shape(B, H, prefill, D)), m.create(v, new Shape(B, H, prefill, D)), w);
                check(m, win, keys, values, w);
            }
            int count = -1;
            for (int step = 0; step < 4 * w + 3; step++) {
                float[] k = random(r, B * H * D);
                float[] v = random(r, B * H * D);
                keys.add(k);
                values.add(v);
                int held = Math.min(w, keys.size() - 1);
                float[][] left = new float[2][];
                try (NDManager scope = m.newSubManager()) {
                    win.push(scope, scope.create(k, new Shape(B, H, 1, D)), scope.create(v, new Shape(B, H, 1, D)), w,
                        (oldK, oldV) -> {
                            left[0] = oldK.toFloatArray();
                            left[1] = oldV.toFloatArray();
                        });
                    if (held == w) {
                        int oldest = keys.size() - 1 - w;
                        assertArrayEquals(keys.get(oldest), left[0], 0f, "leaving key");
                        assertArrayEquals(values.get(oldest), left[1], 0f, "leaving value");
                    } else {
                        assertNull(left[0], "nothing leaves before the window is full");
                    }
                    check(scope, win, keys, values, w);
                }
                if (step == 0) {
                    count = st.arrayCount();
                }
                assertEquals(count, st.arrayCount(), "the state's arrays stay flat");
            }
        }
    }

    /** The window's views against the last min(n, w) tokens of the naive lists. */
    private static void check(NDManager scope, WindowBuffer win, List<float[]> keys, List<float[]> values, int w) {
        int n = Math.min(w, keys.size());
        assertEquals(n, win.size());
        NDArray k = win.keys(scope);
        NDArray v = win.values(scope);
        assertEquals(new Shape(B, H, n, D), k.getShape());
        assertArrayEquals(expected(keys, n), k.toFloatArray(), 0f, "keys");
        assertArrayEquals(expected(values, n), v.toFloatArray(), 0f, "values");
    }

    /** The last n tokens [B, H, 1, D] each, as one [B, H, n, D] array. */
    private static float[] expected(List<float[]> tokens, int n) {
        float[] out = new float[B * H * n * D];
        for (int j = 0; j < n; j++) {
            float[] t = tokens.get(tokens.size() - n + j);
            for (int bh = 0; bh < B * H; bh++) {
                System.arraycopy(t, bh * D, out, (bh * n + j) * D, D);
            }
        }
        return out;
    }

    /** Token t of a [B, H, T, D] array, as [B, H, 1, D]. */
    private static float[] token(float[] a, int time, int t) {
        float[] out = new float[B * H * D];
        for (int bh = 0; bh < B * H; bh++) {
            System.arraycopy(a, (bh * time + t) * D, out, bh * D, D);
        }
        return out;
    }

    private static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }
}
