package molt.teacher.nd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import molt.teacher.model.LlamaBlocks;
import molt.teacher.testing.ReferenceLlama;
import org.junit.jupiter.api.Test;

/** Fused causal attention against plain double-precision loops, and where LlamaBlocks takes it. */
class FusedAttentionTest {

    /** Each of the bh heads of x [bh * t * d] as [t][d]. */
    private static double[][] head(float[] x, int head, int t, int d) {
        double[][] h = new double[t][d];
        for (int i = 0; i < t; i++) {
            for (int c = 0; c < d; c++) {
                h[i][c] = x[(head * t + i) * d + c];
            }
        }
        return h;
    }

    @Test
    void matchesPlainLoopsAndIsWhatLlamaBlocksUsesWithoutGradients() {
        assertTrue(FusedAttention.available(), "the TorchScript module must load on molt's engine");
        try (NDManager m = NDManager.newBaseManager()) {
            for (int t : new int[] {1, 5, 70}) {
                int b = 2;
                int h = 3;
                int d = 16;
                NDArray q = m.randomNormal(new Shape(b, h, t, d));
                NDArray k = m.randomNormal(new Shape(b, h, t, d));
                NDArray v = m.randomNormal(new Shape(b, h, t, d));
                float[] qf = q.toFloatArray();
                float[] kf = k.toFloatArray();
                float[] vf = v.toFloatArray();
                long before = FusedAttention.calls();
                try (NDManager scope = m.newSubManager()) {
                    NDArray out = LlamaBlocks.softmaxAttention(scope, q, k, v, 0, false).get(0);
                    assertEquals(before + 1, FusedAttention.calls(), "a whole sequence without gradients is fused");
                    assertEquals(new Shape(b, h, t, d), out.getShape());
                    float[] got = out.toFloatArray();
                    for (int x = 0; x < b * h; x++) {
                        double[][] want = ReferenceLlama.causalAttention(head(qf, x, t, d), head(kf, x, t, d),
                                head(vf, x, t, d), null); // double-precision loops
                        for (int i = 0; i < t; i++) {
                            for (int c = 0; c < d; c++) {
                                assertEquals(want[i][c], got[(x * t + i) * d + c], 2e-6, "T=" + t + " head " + x);
                            }
                        }
                    }
                    assertEquals(scope, out.getManager(), "the result belongs to the caller's scope");
                    out.addi(1f); // an ordinary tensor: in-place ops on it are allowed
                }
            }
        }
    }

    @Test
    void attentionThatTrainsOrDecodesIsComputedOpByOp() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray q = m.randomNormal(new Shape(1, 2, 8, 4));
            NDArray k = m.randomNormal(new Shape(1, 2, 8, 4));
            NDArray v = m.randomNormal(new Shape(1, 2, 8, 4));
            long before = FusedAttention.calls();
            q.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = LlamaBlocks.softmaxAttention(m, q, k, v, 0, false).get(0);
                gc.backward(out.sum());
            }
            assertTrue(q.getGradient().abs().sum().getFloat() > 0, "the gradient reaches q");
            q.setRequiresGradient(false);
            LlamaBlocks.softmaxAttention(m, q.get(":, :, 7:8"), k, v, 7, false); // one decoding step
            LlamaBlocks.softmaxAttention(m, q, k, v, 0, true); // the weights are asked for
            assertEquals(before, FusedAttention.calls());
        }
    }

    /**
     * Gradients of L = sum(out * g) for one head, in double precision: dV_j = sum_i P_ij g_i; dS_ij = P_ij (g_i.v_j -
     * g_i.out_i); dQ_i = sum_j dS_ij k_j / sqrt(d); dK_j = sum_i dS_ij q_i / sqrt(d). Returns {dQ, dK, dV}, each [t][d].
     */
    private static double[][][] referenceGradients(double[][] q, double[][] k, double[][] v, double[][] g) {
        int t = q.length;
        int d = q[0].length;
        double[][] p = new double[t][t];
        double[][] out = ReferenceLlama.causalAttention(q, k, v, p);
        double[][][] grads = new double[3][t][d];
        for (int i = 0; i < t; i++) {
            double gOut = 0;
            for (int c = 0; c < d; c++) {
                gOut += g[i][c] * out[i][c];
            }
            for (int j = 0; j <= i; j++) {
                double gv = 0;
                for (int c = 0; c < d; c++) {
                    gv += g[i][c] * v[j][c];
                    grads[2][j][c] += p[i][j] * g[i][c];
                }
                double ds = p[i][j] * (gv - gOut) / Math.sqrt(d);
                for (int c = 0; c < d; c++) {
                    grads[0][i][c] += ds * k[j][c];
                    grads[1][j][c] += ds * q[i][c];
                }
            }
        }
        return grads;
    }

    /** {@code n} arrays [1, 1, t, d] of standard normal values. */
    private static NDArray[] oneHead(NDManager m, int n, int t, int d) {
        NDArray[] a = new NDArray[n];
        for (int i = 0; i < n; i++) {
            a[i] = m.randomNormal(new Shape(1, 1, t, d));
        }
        return a;
    }

    @Test
    void attentionThatTrainsIsFusedFromTrainingFromWithTheReferenceGradients() {
        int t = FusedAttention.TRAINING_FROM;
        int d = 4;
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray[] qkvg = oneHead(m, 4, t, d);
            NDArray q = qkvg[0];
            NDArray k = qkvg[1];
            NDArray v = qkvg[2];
            NDArray g = qkvg[3];
            NDArray[] inputs = {q, k, v};
            for (NDArray x : inputs) {
                x.setRequiresGradient(true);
            }
            long before = FusedAttention.calls();
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = LlamaBlocks.softmaxAttention(m, q, k, v, 0, false).get(0);
                gc.backward(out.mul(g).sum());
            }
            assertEquals(before + 1, FusedAttention.calls(), "from TRAINING_FROM tokens, training is fused too");
            double[][][] want = referenceGradients(head(q.toFloatArray(), 0, t, d), head(k.toFloatArray(), 0, t, d),
                    head(v.toFloatArray(), 0, t, d), head(g.toFloatArray(), 0, t, d));
            for (int n = 0; n < 3; n++) {
                float[] got = inputs[n].getGradient().toFloatArray();
                for (int i = 0; i < t; i++) {
                    for (int c = 0; c < d; c++) {
                        assertEquals(want[n][i][c], got[i * d + c], 2e-5 * (1 + Math.abs(want[n][i][c])),
                                "gradient " + "qkv".charAt(n) + " at " + i + "," + c);
                    }
                }
            }
        }
    }

    /**
     * The BF16 form (q, k, v rounded to BF16, F32 softmax and sums) against double loops: within BF16's rounding,
     * and measurably not the F32 op; its gradients at {@link FusedAttention#TRAINING_FROM} tokens likewise.
     */
    @Test
    void bf16FormIsTheReferenceToBf16RoundingWithItsGradients() {
        int t = FusedAttention.TRAINING_FROM;
        int d = 8;
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray[] qkvg = oneHead(m, 4, t, d);
            NDArray q = qkvg[0];
            NDArray k = qkvg[1];
            NDArray v = qkvg[2];
            NDArray g = qkvg[3];
            double[][] qd = head(q.toFloatArray(), 0, t, d);
            double[][] kd = head(k.toFloatArray(), 0, t, d);
            double[][] vd = head(v.toFloatArray(), 0, t, d);
            double[][] want = ReferenceLlama.causalAttention(qd, kd, vd, null);
            float[] f32 = FusedAttention.causal(m, q, k, v, false).toFloatArray();
            NDArray[] inputs = {q, k, v};
            for (NDArray x : inputs) {
                x.setRequiresGradient(true);
            }
            long before = FusedAttention.calls();
            float[] got;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = LlamaBlocks.softmaxAttention(m, q, k, v, 0, false, true).get(0);
                got = out.toFloatArray();
                gc.backward(out.mul(g).sum());
            }
            assertEquals(before + 1, FusedAttention.calls());
            double err = 0;
            double norm = 0;
            double fromF32 = 0;
            for (int i = 0; i < t; i++) {
                for (int c = 0; c < d; c++) {
                    err = Math.max(err, Math.abs(got[i * d + c] - want[i][c]));
                    norm = Math.max(norm, Math.abs(want[i][c]));
                    fromF32 = Math.max(fromF32, Math.abs(got[i * d + c] - f32[i * d + c]));
                }
            }
            assertTrue(err <= 2e-2 * norm, "BF16 attention within 2e-2 of the largest output, found " + err / norm);
            assertTrue(fromF32 > 1e-4 * norm, "the inputs are rounded to BF16: it must differ from the F32 op");
            double[][][] grads = referenceGradients(qd, kd, vd, head(g.toFloatArray(), 0, t, d));
            for (int n = 0; n < 3; n++) {
                float[] gg = inputs[n].getGradient().toFloatArray();
                double gErr = 0;
                double gNorm = 0;
                for (int i = 0; i < t; i++) {
                    for (int c = 0; c < d; c++) {
                        gErr = Math.max(gErr, Math.abs(gg[i * d + c] - grads[n][i][c]));
                        gNorm = Math.max(gNorm, Math.abs(grads[n][i][c]));
                    }
                }
                assertTrue(gErr <= 3e-2 * gNorm, "gradient " + "qkv".charAt(n) + " within 3e-2, found " + gErr / gNorm);
            }
        }
    }

    @Test
    void aNewThreadComputesAsTheMainOneOnceAutogradIsOffThere() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray q = m.randomNormal(new Shape(1, 2, 8, 4));
            long[] fused = new long[2];
            Thread t = new Thread(() -> {
                long before = FusedAttention.calls();
                LlamaBlocks.softmaxAttention(m, q, q, q, 0, false); // a new thread: PyTorch's autograd is on
                fused[0] = FusedAttention.calls() - before;
                Autograd.offForThisThread();
                LlamaBlocks.softmaxAttention(m, q, q, q, 0, false);
                fused[1] = FusedAttention.calls() - before - fused[0];
            });
            t.start();
            t.join();
            assertEquals(0, fused[0], "with autograd on, the explicit ops");
            assertEquals(1, fused[1], "with autograd off, fused, as in the thread that loaded the engine");
        }
    }

    @Test
    void repeatedCallsKeepNoArraysBehind() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray q = m.randomNormal(new Shape(1, 2, 16, 8));
            int base = m.getManagedArrays().size();
            for (int i = 0; i < 50; i++) {
                try (NDManager scope = m.newSubManager()) {
                    FusedAttention.causal(scope, q, q, q);
                }
            }
            assertEquals(base, m.getManagedArrays().size());
        }
    }

    @Test
    void moduleNamesMustBeIdentifiers() {
        assertThrows(IllegalArgumentException.class, () -> TorchScriptModule.archive("not a name", ""));
    }
}
