package molt.teacher.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Map;

/**
 * The teacher's attention core: causal softmax attention (scale 1/sqrt(D)), keys and values repeated to the query
 * heads (GQA). Its decoding state is a {@link KvState}; its recurrent form takes any number of tokens at once.
 * It has no parameters of its own, so one instance serves every layer.
 *
 * <p>Shapes: B batch, Hq query heads, Hkv key/value heads, T time, D head dim.
 */
public final class SoftmaxAttention implements AttentionCore {
    private final Device device;
    private final boolean bf16;

    /** Softmax attention in F32. */
    public SoftmaxAttention(Device device) {
        this(device, false);
    }

    /**
     * With {@code bf16}, a whole sequence's fused attention takes q, k and v rounded to BF16 (a model whose frozen
     * weights multiply in BF16 on CPU: {@link molt.teacher.nd.Bf16Products}); decoding steps and the explicit ops
     * stay F32.
     */
    public SoftmaxAttention(Device device, boolean bf16) {
        this.device = device;
        this.bf16 = bf16;
    }

    @Override
    public Map<String, NDArray> parameters() {
        return Map.of();
    }

    @Override
    public Output forward(NDManager scope, AttentionInput in, boolean withState) {
        NDArray out = LlamaBlocks.softmaxAttention(scope, in.q(), in.k(), in.v(), 0, false, bf16).get(0);
        KvState state = null;
        if (withState) {
            state = newState();
            state.append(scope, in.kvKeys(), in.kvValues()); // the views returned close with the scope
        }
        return new Output(out, state);
    }

    @Override
    public KvState newState() {
        return new KvState(device);
    }

    @Override
    public NDArray step(NDManager scope, AttentionState state, AttentionInput in) {
        KvState kvState = (KvState) state;
        long start = kvState.length();
        NDArray[] kv = kvState.append(scope, in.kvKeys(), in.kvValues()); // views [B, Hkv, start + T, D] in scope
        NDArray k = LlamaBlocks.repeatKv(kv[0], in.groups()); // [B, Hq, start + T, D]
        NDArray v = LlamaBlocks.repeatKv(kv[1], in.groups());
        return LlamaBlocks.softmaxAttention(scope, in.q(), k, v, start, false).get(0);
    }

    /** {@link molt.teacher.cpu.SoftmaxStep} holding a copy of the prefilled cache (batch 1 only, else null). */
    @Override
    public molt.teacher.cpu.CpuStep cpuStep(AttentionState prefilled, int kvGroups) {
        KvState kv = (KvState) prefilled;
        long[] dims = kv.dims(); // {B, Hkv, D}
        if (dims == null || dims[0] != 1) {
            return null;
        }
        float[][] cached = kv.values();
        return new molt.teacher.cpu.SoftmaxStep(Math.toIntExact(dims[1] * kvGroups), Math.toIntExact(dims[1]),
                Math.toIntExact(dims[2]), cached[0], cached[1], Math.toIntExact(kv.length()));
    }

    @Override
    public boolean stepsMany() {
        return true;
    }

    @Override
    public NDArray attentionWeights(NDManager scope, AttentionInput in) {
        return LlamaBlocks.softmaxAttention(scope, in.q(), in.k(), in.v(), 0, true).get(1);
    }
}
