package molt.teacher.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import molt.teacher.nd.FusedAttention;
import molt.teacher.nd.Ops;
import molt.teacher.nd.Scalars;

/**
 * The pieces of a Llama decoder layer as functions of explicit weights, shared by the teacher and the student.
 * Every function puts a per-call array first, so results belong to the caller's per-call manager and never to the
 * long-lived weights' manager (DJL attaches an op's result to its first operand's manager).
 *
 * <p>Shapes: B batch, T time, H hidden, Hq query heads, Hkv key/value heads, D head dim.
 */
public final class LlamaBlocks {
    private LlamaBlocks() {
    }

    /** RMSNorm in fp32: x * rsqrt(mean(x^2) + eps) * w over the last axis. */
    public static NDArray rmsNorm(NDArray x, NDArray w, double eps) {
        return rmsNorm(x, w, eps, false);
    }

    /**
     * RMSNorm; with {@code inPlace} (no backward runs through it) the epsilon and the weight are applied in place to
     * the norm's own temporaries: the same ops in the same order, two arrays fewer.
     */
    public static NDArray rmsNorm(NDArray x, NDArray w, double eps, boolean inPlace) {
        NDArray variance = x.square().mean(new int[] {-1}, true);
        if (inPlace) {
            return x.div(variance.addi(Scalars.of((float) eps)).sqrt()).muli(w);
        }
        return x.div(variance.add(Scalars.of((float) eps)).sqrt()).mul(w); // a cached scalar: no new array per call
    }

    /**
     * x W^T + b, with W stored transposed as wT [in, out]; b may be null. An F16 wT (16-bit frozen weights used as
     * they are, {@link Frozen#HALF}) multiplies in F16 on GPU and in BF16 on CPU, and returns F32.
     */
    public static NDArray linear(NDArray x, NDArray wT, NDArray b) {
        NDArray y = wT.getDataType() == DataType.FLOAT16 ? sixteenBit(x, wT)
                : Ops.matMul(x, wT); // x.matMul(wT) without DJL's shape queries
        return b == null ? y : y.add(b);
    }

    /**
     * Rows (sequences of a batch) up to which a decoding step, one position per sequence and no gradient recorded,
     * multiplies in F16 on a CPU with F16 arithmetic: rounding the whole weight to BF16 costs more than a few rows'
     * product. At the SmolLM2-135M shape one token's [576, 1536] product took 0.23 ms in F16 against 1.17 in BF16, at
     * Llama-3.2-1B's [2048, 8192] 3.1 against 39 ms; BF16 wins from about 128 rows (docs/BENCHMARKS.md).
     */
    static final long F16_ROWS = 64;

    /**
     * x wT for an F16 wT: F16 products on GPU; on CPU BF16, except a decoding step's (x [B, 1, in], B up to
     * {@link #F16_ROWS}, no autograd) in F16 where the CPU has F16 arithmetic (F16's narrow range never meets a
     * gradient there, every pass that trains or is recomputed has more than one position, and a product that
     * overflows F16 is taken again in BF16); F32 products of a widened copy if BF16 is unavailable.
     */
    private static NDArray sixteenBit(NDArray x, NDArray wT) {
        if (x.getDevice().isGpu()) {
            return f16Product(x, wT);
        }
        Shape s = x.getShape();
        if (s.dimension() == 3 && s.get(1) == 1 && s.get(0) <= F16_ROWS && molt.teacher.nd.Bf16Products.f16Fast()
                && !ai.djl.pytorch.jni.JniUtils.isGradMode()) {
            NDArray y = molt.teacher.nd.Bf16Products.stepProduct(x, wT); // a decoding step; BF16 if F16 overflows
            if (y != null) {
                return y;
            }
        }
        NDArray y = molt.teacher.nd.Bf16Products.product(x, wT);
        return y != null ? y : Ops.matMul(x, wT.toType(DataType.FLOAT32, false));
    }

    /** The GPU's form: x cast to F16, the product in F16, the result back to F32 (tests run it on CPU). */
    static NDArray f16Product(NDArray x, NDArray wT) {
        return x.toType(DataType.FLOAT16, false).matMul(wT).toType(DataType.FLOAT32, false);
    }

    /** [B, T, heads * D] -> [B, heads, T, D]. */
    public static NDArray splitHeads(NDArray x, int heads) {
        Shape s = x.getShape();
        return splitHeads(x, s.get(0), s.get(1), heads, s.get(2) / heads);
    }

    /** [B, T, heads * D] -> [B, heads, T, D] for a known shape; for one token (T = 1) a single reshape. */
    public static NDArray splitHeads(NDArray x, long b, long t, int heads, long d) {
        if (t == 1) {
            return x.reshape(b, heads, 1, d); // [B, heads, 1, D]: for one token the same layout as the transpose
        }
        return x.reshape(b, t, heads, d) // [B, T, heads, D]
                .transpose(0, 2, 1, 3); // [B, heads, T, D]
    }

    /** GQA: [B, Hkv, T, D] -> [B, Hkv * groups, T, D], each key/value head repeated for its group of queries. */
    public static NDArray repeatKv(NDArray x, int groups) {
        if (groups == 1) {
            return x;
        }
        Shape s = x.getShape();
        return x.expandDims(2) // [B, Hkv, 1, T, D]
                .repeat(2, groups) // [B, Hkv, G, T, D]
                .reshape(s.get(0), s.get(1) * groups, s.get(2), s.get(3)); // [B, Hq, T, D]
    }

    /**
     * Causal softmax attention. q [B, Hq, Tq, D] holds positions offset..offset+Tq-1 and k, v [B, Hq, Tk, D]
     * positions 0..Tk-1 (already GQA-expanded). Returns out [B, Hq, Tq, D] and, when {@code withWeights}, the
     * attention weights [B, Hq, Tq, Tk]. The mask is built from index comparisons before the softmax. A whole
     * sequence (offset 0, Tq = Tk) without weights takes {@link FusedAttention}'s single op instead (the same function
     * to float rounding) when no gradient flows through it or from {@link FusedAttention#TRAINING_FROM} tokens up.
     */
    public static NDList softmaxAttention(NDManager scope, NDArray q, NDArray k, NDArray v, long offset,
                                          boolean withWeights) {
        return softmaxAttention(scope, q, k, v, offset, withWeights, false);
    }

    /**
     * {@link #softmaxAttention}; with {@code bf16} the fused op takes q, k and v rounded to BF16 (for models whose
     * frozen weights multiply in BF16); the explicit ops stay F32.
     */
    public static NDList softmaxAttention(NDManager scope, NDArray q, NDArray k, NDArray v, long offset,
                                          boolean withWeights, boolean bf16) {
        long tq = q.getShape().get(2);
        long tk = k.getShape().get(2);
        if (!withWeights && offset == 0 && tq == tk && FusedAttention.appliesTo(tq)) {
            NDArray fused = FusedAttention.causal(scope, q, k, v, bf16); // one op, no [B, Hq, T, T] arrays
            if (fused != null) {
                return new NDList(fused);
            }
        }
        double scale = 1.0 / Math.sqrt(q.getShape().get(3));
        // scaled and masked in place: autograd keeps q and k for the product's backward, not the product itself
        NDArray scores = q.matMul(k.transpose(0, 1, 3, 2)).muli(Scalars.of((float) scale)); // [B, Hq, Tq, Tk]
        if (tk - 1 <= offset) {
            // No key lies after the first query (a decoding step): the mask would add 0 everywhere.
            NDArray probs = Ops.softmax(scores, -1);
            NDArray out = Ops.matMul(probs, v); // [B, Hq, Tq, D]
            return withWeights ? new NDList(out, probs) : new NDList(out);
        }
        NDArray qPos = scope.arange(offset, offset + tq, 1, DataType.INT64).reshape(tq, 1); // [Tq, 1]
        NDArray kPos = scope.arange(0, tk, 1, DataType.INT64).reshape(1, tk); // [1, Tk]
        // Future keys get -1e30 added (exp underflows to exactly 0); DJL's where() does not broadcast.
        NDArray future = kPos.gt(qPos).toType(DataType.FLOAT32, false).mul(Scalars.of(-1e30f)); // [Tq, Tk]
        NDArray probs = scores.addi(future).softmax(-1);
        NDArray out = probs.matMul(v); // [B, Hq, Tq, D]
        return withWeights ? new NDList(out, probs) : new NDList(out);
    }
}
