package molt.teacher.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import molt.teacher.LlamaConfig;
import molt.teacher.Precision;
import molt.teacher.io.DType;
import molt.teacher.nd.NativeArrays;
import molt.teacher.testing.ReferenceLlama;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link LlamaModel#recomputedStep} against one backward through the whole graph, with a 16-bit LM head multiplied a
 * few vocabulary rows at a time (several blocks, forward and gradient), tied and untied.
 */
class RecomputedHeadTest {

    /** A projector with a trainable additive term x D per (layer, projection): the gradient to compare. */
    private static final class Delta implements Projector {
        final NDArray[][] d;

        Delta(NDManager m, LlamaConfig c) {
            Random r = new Random(2);
            d = new NDArray[c.numLayers()][molt.teacher.Projection.values().length];
            for (int i = 0; i < c.numLayers(); i++) {
                for (molt.teacher.Projection p : molt.teacher.Projection.values()) {
                    float[] v = new float[p.in(c) * p.out(c)];
                    for (int j = 0; j < v.length; j++) {
                        v[j] = (float) (0.01 * r.nextGaussian());
                    }
                    NDArray a = NativeArrays.floats(m, v, new Shape(p.in(c), p.out(c)));
                    a.setRequiresGradient(true);
                    d[i][p.ordinal()] = a;
                }
            }
        }

        @Override
        public NDArray project(int layer, molt.teacher.Projection target, NDArray x, NDArray wT, NDArray b) {
            return LlamaBlocks.linear(x, wT, b).add(x.matMul(d[layer][target.ordinal()]));
        }

        float[] grads() {
            java.util.List<Float> all = new java.util.ArrayList<>();
            for (NDArray[] row : d) {
                for (NDArray a : row) {
                    for (float f : NativeArrays.values(a.getGradient())) {
                        all.add(f);
                    }
                    a.getGradient().subi(a.getGradient());
                }
            }
            float[] out = new float[all.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = all.get(i);
            }
            return out;
        }
    }

    private static NDArray nll(NDManager scope, NDArray logits, long[][] target, int from, int to) {
        long[] ids = new long[target.length * (to - from)];
        for (int b = 0; b < target.length; b++) {
            for (int j = from; j < to; j++) {
                ids[b * (to - from) + j - from] = target[b][j];
            }
        }
        NDArray y = NativeArrays.longs(scope, ids, new Shape(target.length, to - from, 1));
        return logits.logSoftmax(-1).gather(y, -1).neg().sum().div(molt.teacher.nd.Scalars.of(
                (float) (target.length * target[0].length)));
    }

    @Test
    void severalHeadBlocksGiveTheFullGraphsGradients(@TempDir Path dir) {
        for (boolean tie : new boolean[] {true, false}) {
          Path model = TinyCheckpoints.builder().dtype(DType.BF16).tie(tie).write(dir.resolve("m" + tie));
          // the head's blocks widened to F32, or multiplied in BF16 (16-bit weights on a CPU with AMX)
          for (Frozen mode : Frozen.values()) {
            try (molt.teacher.io.WeightSource ws = molt.teacher.io.Checkpoints.open(model);
                 LlamaModel m = LlamaModel.fromWeights(molt.teacher.LlamaConfig.read(model), ws, Device.cpu(), false,
                         Precision.F16, mode);
                 NDManager params = NDManager.newBaseManager()) {
                m.headBlockValues(5L * m.config().hiddenSize()); // 5 vocabulary rows a block: 13 blocks of 64
                Delta delta = new Delta(params, m.config());
                List<AttentionCore> cores = Collections.nCopies(m.config().numLayers(), new SoftmaxAttention(Device.cpu()));
                long[][] in = {{3, 9, 27, 17, 51, 40, 2, 11, 5}, {1, 4, 9, 16, 25, 36, 49, 60, 8}};
                long[][] target = {{9, 27, 17, 51, 40, 2, 11, 5, 7}, {4, 9, 16, 25, 36, 49, 60, 8, 30}};
                double full;
                try (NDManager step = NDManager.newBaseManager();
                     GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray loss = nll(step, m.run(step, in, cores, LayerPass.parallel(delta)), target, 0, 9);
                    full = loss.getFloat();
                    gc.backward(loss);
                }
                float[] want = delta.grads();
                double recomputed;
                try (NDManager step = NDManager.newBaseManager();
                     GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    recomputed = m.recomputedStep(step, in, cores, delta, i -> { }, 4,
                            (scope, logits, from, to) -> nll(scope, logits, target, from, to), gc);
                }
                float[] got = delta.grads();
                // BF16 products of the head's blocks round differently from the whole head's (3e-5 of the loss seen)
                assertEquals(full, recomputed, (mode == Frozen.WIDEN ? 1e-5 : 1e-3) * Math.abs(full), "tie " + tie);
                double[] w = new double[want.length];
                for (int i = 0; i < w.length; i++) {
                    w[i] = want[i];
                }
                double err = ReferenceLlama.relErr(got, w);
                // BF16 products round each block's product to 8 significant bits, differently from the whole head's
                assertTrue(err < (mode == Frozen.WIDEN ? 1e-4 : 2e-2), "tie " + tie + " " + mode + ": relative error "
                        + err);
            }
          }
        }
    }
}
