package molt.teacher.model;

import molt.teacher.LlamaConfig;
import molt.teacher.Projection;
import molt.teacher.cpu.CpuStep;
import molt.teacher.cpu.Kernels;

/**
 * A decoding state's steps in plain Java: the decoder layer of {@link DecoderLayer} for one token of one sequence,
 *
 * <pre>
 *   xn = rmsnorm(h);  q, k, v = proj(xn) (RoPE on q, k);  a = core(q, k, v);  x = h + o_proj(a)
 *   out = x + down(silu(gate(rmsnorm(x))) * up(rmsnorm(x)))
 * </pre>
 *
 * then the final norm and LM head, over {@link CpuWeights} and each layer's {@link CpuStep}, with buffers reused
 * from step to step. It computes what the engine's step computes, to float rounding (tests compare the two).
 */
final class CpuDecoding {
    private final LlamaConfig c;
    private final CpuWeights w;
    private final CpuStep[] cores;
    private final Rope rope;
    private final float eps;
    private final float[] h;
    private final float[] xn;
    private final CpuStep.Input in;
    private final float[] a;
    private final float[] gate;
    private final float[] up;
    private final float[] cos;
    private final float[] sin;

    CpuDecoding(LlamaConfig c, CpuWeights w, CpuStep[] cores, Rope rope) {
        this.c = c;
        this.w = w;
        this.cores = cores;
        this.rope = rope;
        this.eps = (float) c.rmsNormEps();
        this.h = new float[c.hiddenSize()];
        this.xn = new float[Math.max(c.hiddenSize(), c.qDim())];
        this.in = new CpuStep.Input(c.hiddenSize(), c.qDim(), c.kvDim());
        this.a = new float[Math.max(c.qDim(), c.hiddenSize())];
        this.gate = new float[c.intermediateSize()];
        this.up = new float[c.intermediateSize()];
        this.cos = new float[c.headDim()];
        this.sin = new float[c.headDim()];
    }

    /** Logits [V] of {@code token} (a valid id) at {@code position}; every layer's core state advances by one token. */
    float[] step(long token, long position) {
        int hidden = c.hiddenSize();
        System.arraycopy(w.embed, Math.toIntExact(token * hidden), h, 0, hidden);
        rope.row(position, cos, sin);
        for (int i = 0; i < cores.length; i++) {
            Kernels.rmsNorm(h, w.inputNorm[i], eps, in.hidden);
            project(i, Projection.Q, in.hidden, in.qRaw);
            project(i, Projection.K, in.hidden, in.kRaw);
            project(i, Projection.V, in.hidden, in.v);
            System.arraycopy(in.qRaw, 0, in.q, 0, in.q.length);
            System.arraycopy(in.kRaw, 0, in.k, 0, in.k.length);
            Kernels.rope(in.q, c.numHeads(), c.headDim(), cos, sin);
            Kernels.rope(in.k, c.numKvHeads(), c.headDim(), cos, sin);
            cores[i].step(in, a); // [Hq * D]
            project(i, Projection.O, a, xn); // o [H]
            for (int j = 0; j < hidden; j++) {
                h[j] += xn[j];
            }
            Kernels.rmsNorm(h, w.postNorm[i], eps, xn);
            project(i, Projection.GATE, xn, gate);
            project(i, Projection.UP, xn, up);
            Kernels.siluMul(gate, up, c.intermediateSize());
            project(i, Projection.DOWN, gate, a); // [H]
            for (int j = 0; j < hidden; j++) {
                h[j] += a[j];
            }
        }
        Kernels.rmsNorm(h, w.norm, eps, xn);
        float[] logits = new float[c.vocabSize()];
        if (w.headT != null) {
            Kernels.matVec(xn, 0, w.headT, hidden, c.vocabSize(), null, logits, 0);
        } else {
            Kernels.matVecRows(w.embed, c.vocabSize(), hidden, xn, logits);
        }
        return logits;
    }

    /** y = x W^T + b for layer i's projection p. */
    private void project(int i, Projection p, float[] x, float[] y) {
        Kernels.matVec(x, 0, w.weightsT[i][p.ordinal()], p.in(c), p.out(c), w.biases[i][p.ordinal()], y, 0);
    }

    /** Bytes the layers' states hold. */
    long bytes() {
        long n = 0;
        for (CpuStep s : cores) {
            n += s.bytes();
        }
        return n;
    }
}
