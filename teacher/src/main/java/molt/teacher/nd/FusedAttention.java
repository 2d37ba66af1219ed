package molt.teacher.nd;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;

/**
 * Causal softmax attention in one libtorch op, {@code scaled_dot_product_attention} (flash attention on CPU, its
 * fused kernels on GPU), reached through a {@link TorchFunction} since DJL has no binding for it. It never
 * builds the [B, H, T, T] scores: at the SmolLM2-135M shape (9 heads of 64, 1024 tokens, 2 threads) it took 9.7 ms
 * per layer against 36 ms for the scores, mask, softmax and product it replaces (docs/BENCHMARKS.md).
 *
 * <p>Used where no gradient flows through the attention (the teacher's forward for attention transfer's targets and
 * KL, evaluation, prefill), and in training from {@link #TRAINING_FROM} tokens up (autograd runs through the module:
 * its backward is the op's own). Shorter sequences keep the explicit ops while training, where they cost little, so
 * the pretraining of short-sequence teachers (the quickstart's, and its pinned digests) is unchanged. The environment
 * variable {@code MOLT_FUSED_ATTENTION=0} turns it off; if the engine cannot load the module, molt logs why once and
 * uses the explicit ops.
 *
 * <p>Shapes: q, k, v [B, H, T, D] (keys and values already repeated to the query heads), out [B, H, T, D].
 */
public final class FusedAttention {
    /** The module's forward: causal, no mask, no dropout, scale 1/sqrt(D). */
    private static final String BODY = """
              def forward(self: __torch__.CausalAttention,
                q: Tensor,
                k: Tensor,
                v: Tensor) -> Tensor:
                return torch.scaled_dot_product_attention(q, k, v, None, 0., True)
            """;
    /**
     * From this many tokens, attention that trains is fused too: forward and backward of one SmolLM2-shaped layer
     * (9 heads of 64) took 35.5 against 81.8 ms at 1,024 tokens and 105 against 388 ms at 2,048 (docs/BENCHMARKS.md).
     */
    public static final int TRAINING_FROM = 1024;
    private static final TorchFunction CAUSAL = new TorchFunction("CausalAttention", BODY, enabled());
    /**
     * The same op on q, k, v rounded to BF16 (the kernel keeps its softmax and sums in F32, and rounds the
     * probabilities to BF16 for their product with v), the result widened back to F32: 2x the F32 op's rate at the
     * SmolLM2-135M shape on AMX (docs/BENCHMARKS.md). For models whose frozen weights multiply in BF16.
     */
    private static final TorchFunction CAUSAL_BF16 = new TorchFunction("CausalAttentionBf16", """
              def forward(self: __torch__.CausalAttentionBf16,
                q: Tensor,
                k: Tensor,
                v: Tensor) -> Tensor:
                return torch.scaled_dot_product_attention(q.to(15), k.to(15), v.to(15), None, 0., True).to(6)
            """, enabled());
    private static final java.util.concurrent.atomic.AtomicLong CALLS = new java.util.concurrent.atomic.AtomicLong();

    private FusedAttention() {
    }

    /**
     * Causal attention over q, k, v [B, H, T, D] (query t sees keys 0..t), owned by {@code scope}; null when fused
     * attention is off or could not be loaded (the caller then computes it op by op).
     */
    public static NDArray causal(NDManager scope, NDArray q, NDArray k, NDArray v) {
        return causal(scope, q, k, v, false);
    }

    /** {@link #causal}, with q, k and v rounded to BF16 when {@code bf16} (an F32 result either way). */
    public static NDArray causal(NDManager scope, NDArray q, NDArray k, NDArray v, boolean bf16) {
        NDArray out = (bf16 ? CAUSAL_BF16 : CAUSAL).apply(scope, q, k, v);
        if (out != null) {
            CALLS.incrementAndGet();
        }
        return out;
    }

    /** How many attentions this process has computed fused (for tests and diagnostics). */
    public static long calls() {
        return CALLS.get();
    }

    /**
     * True when causal attention over a whole sequence of {@code tokens} tokens takes the fused op (if available):
     * always while autograd is off (no backward can run through it), and from {@link #TRAINING_FROM} tokens while it
     * records.
     */
    public static boolean appliesTo(long tokens) {
        return tokens >= TRAINING_FROM || !JniUtils.isGradMode();
    }

    /** True unless {@code MOLT_FUSED_ATTENTION=0} turned fused attention off (asks nothing of the engine). */
    public static boolean enabled() {
        return !"0".equals(System.getenv("MOLT_FUSED_ATTENTION"));
    }

    /** True when fused attention is in use (not turned off, and the module loaded). */
    public static boolean available() {
        return CAUSAL.available();
    }
}
