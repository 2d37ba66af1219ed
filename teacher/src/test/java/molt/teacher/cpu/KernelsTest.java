package molt.teacher.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The plain-Java decoding kernels against naive loops in double precision. */
class KernelsTest {
    private static float[] random(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    private static void close(double want, float got, String what) {
        assertTrue(Math.abs(want - got) <= 1e-5 * (1 + Math.abs(want)), what + ": expected " + want + ", found " + got);
    }

    @Test
    void matVecIsXTimesWTransposedPlusBiasForEveryRemainderOfFour() {
        Random r = new Random(1);
        for (int in : new int[] {1, 3, 4, 7, 33}) {
            for (int out : new int[] {1, 5, 16}) {
                float[] x = random(r, in + 2);
                float[] wT = random(r, in * out);
                float[] b = random(r, out);
                float[] y = new float[out + 3];
                java.util.Arrays.fill(y, 42f);
                Kernels.matVec(x, 2, wT, in, out, b, y, 3);
                for (int o = 0; o < out; o++) {
                    double want = b[o];
                    for (int i = 0; i < in; i++) {
                        want += (double) x[2 + i] * wT[i * out + o];
                    }
                    close(want, y[3 + o], "matVec in " + in + " out " + out + " o " + o);
                }
                assertEquals(42f, y[0], "matVec wrote before its offset");
                Kernels.matVec(x, 2, wT, in, out, null, y, 0);
                for (int o = 0; o < out; o++) {
                    double want = 0;
                    for (int i = 0; i < in; i++) {
                        want += (double) x[2 + i] * wT[i * out + o];
                    }
                    close(want, y[o], "matVec without bias");
                }
            }
        }
    }

    @Test
    void addMatVecReadsTheLeadingColumnsOfAStridedMatrix() {
        Random r = new Random(2);
        int in = 6;
        int out = 5;
        int stride = 9;
        float[] x = random(r, in);
        float[] w = random(r, 3 + in * stride);
        float[] y = random(r, out);
        float[] y0 = y.clone();
        Kernels.addMatVec(x, 0, w, 3, stride, in, out, y, 0);
        for (int o = 0; o < out; o++) {
            double want = y0[o];
            for (int i = 0; i < in; i++) {
                want += (double) x[i] * w[3 + i * stride + o];
            }
            close(want, y[o], "addMatVec o " + o);
        }
    }

    @Test
    void dotRowsNormSiluRopeAndSoftmaxMatchTheirDefinitions() {
        Random r = new Random(3);
        float[] a = random(r, 21);
        float[] b = random(r, 21);
        double dot = 0;
        for (int i = 0; i < 19; i++) {
            dot += (double) a[1 + i] * b[2 + i];
        }
        close(dot, Kernels.dot(a, 1, b, 2, 19), "dot");

        float[] w = random(r, 4 * 7);
        float[] x = random(r, 7);
        float[] y = new float[4];
        Kernels.matVecRows(w, 4, 7, x, y);
        for (int o = 0; o < 4; o++) {
            double want = 0;
            for (int i = 0; i < 7; i++) {
                want += (double) w[o * 7 + i] * x[i];
            }
            close(want, y[o], "matVecRows");
        }

        float[] norm = random(r, 7);
        float[] out = new float[7];
        Kernels.rmsNorm(x, norm, 1e-5f, out);
        double ms = 0;
        for (float v : x) {
            ms += (double) v * v;
        }
        ms /= 7;
        for (int i = 0; i < 7; i++) {
            close(x[i] / Math.sqrt(ms + 1e-5) * norm[i], out[i], "rmsNorm");
        }

        float[] g = random(r, 5);
        float[] u = random(r, 5);
        float[] g0 = g.clone();
        Kernels.siluMul(g, u, 5);
        for (int i = 0; i < 5; i++) {
            close(g0[i] / (1 + Math.exp(-g0[i])) * u[i], g[i], "siluMul");
        }

        // RoPE on two heads of dim 4 at angle a_i: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).
        float[] q = random(r, 8);
        float[] q0 = q.clone();
        double[] angle = {0.3, 1.7};
        float[] cos = new float[4];
        float[] sin = new float[4];
        for (int i = 0; i < 2; i++) {
            cos[i] = cos[2 + i] = (float) Math.cos(angle[i]);
            sin[i] = (float) -Math.sin(angle[i]);
            sin[2 + i] = (float) Math.sin(angle[i]);
        }
        Kernels.rope(q, 2, 4, cos, sin);
        for (int h = 0; h < 2; h++) {
            for (int i = 0; i < 2; i++) {
                double x1 = q0[h * 4 + i];
                double x2 = q0[h * 4 + 2 + i];
                close(x1 * Math.cos(angle[i]) - x2 * Math.sin(angle[i]), q[h * 4 + i], "rope first half");
                close(x2 * Math.cos(angle[i]) + x1 * Math.sin(angle[i]), q[h * 4 + 2 + i], "rope second half");
            }
        }

        float[] s = {5f, 1f, 2f, 3f, 1000f, 1001f};
        Kernels.softmax(s, 1, 3);
        double z = Math.exp(1) + Math.exp(2) + Math.exp(3);
        for (int i = 0; i < 3; i++) {
            close(Math.exp(1 + i) / z, s[1 + i], "softmax");
        }
        assertEquals(5f, s[0]);
        Kernels.softmax(s, 4, 2); // large logits: no overflow
        close(1 / (1 + Math.E), s[4], "softmax of large logits");
    }
}
