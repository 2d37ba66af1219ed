package molt.pipeline.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.Map;
import java.util.Random;
import molt.pipeline.config.TeacherPretrainSpec;
import molt.teacher.LlamaConfig;
import molt.teacher.model.LlamaModel;
import org.junit.jupiter.api.Test;

/**
 * The pretraining path (the teacher run as an all-softmax student, every weight trainable): autograd's gradients
 * against central finite differences of the loss, for attention (q, k, v) and MLP weights.
 */
class TeacherGradientTest {
    private static double loss(LlamaModel model, long[][] in, long[] y) {
        try (NDManager s = NDManager.newBaseManager(Device.cpu())) {
            NDArray logits = model.trainingLogits(s, in);
            return logits.logSoftmax(-1).gather(molt.teacher.nd.NativeArrays.longs(s, y, new ai.djl.ndarray.types.Shape(1, y.length, 1)), -1).mean().neg().getFloat();
        }
    }

    @Test
    void pretrainingGradientsMatchFiniteDifferences() {
        TeacherPretrainSpec.Pretrain p = new TeacherPretrainSpec.Pretrain(32, 2, 4, 4, 64, 10000, 0, 0, "row", 8, 32,
                new TeacherPretrainSpec.Repeats(0, 96, 8, 6, 48, 0));
        LlamaConfig c = TeacherPretrainStage.config(p);
        LlamaModel model = LlamaModel.fromWeights(c, new molt.teacher.io.RandomWeights(c, 0), Device.cpu(), true);
        Random r = new Random(1);
        long[] row = new long[17];
        for (int i = 0; i < row.length; i++) row[i] = 97 + r.nextInt(5);
        long[][] in = {java.util.Arrays.copyOf(row, 16)};
        long[] y = java.util.Arrays.copyOfRange(row, 1, 17);
        Map<String, NDArray> w = model.storedWeights();
        try (NDManager s = NDManager.newBaseManager(Device.cpu())) {
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray logits = model.trainingLogits(s, in);
                NDArray l = logits.logSoftmax(-1).gather(molt.teacher.nd.NativeArrays.longs(s, y, new ai.djl.ndarray.types.Shape(1, 16, 1)), -1).mean().neg();
                gc.backward(l);
            }
        }
        for (String name : new String[] {"model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.v_proj.weight", "model.layers.0.mlp.up_proj.weight"}) {
            NDArray a = w.get(name);
            float[] g = a.getGradient().toFloatArray();
            float[] v = a.toFloatArray();

            for (int idx : new int[] {0, 5, 37, 100}) {
                float orig = v[idx];
                float eps = 1e-2f;
                v[idx] = orig + eps; molt.teacher.nd.InPlace.copy(a, v);
                double lp = loss(model, in, y);
                v[idx] = orig - eps; molt.teacher.nd.InPlace.copy(a, v);
                double lm = loss(model, in, y);
                v[idx] = orig; molt.teacher.nd.InPlace.copy(a, v);
                double fd = (lp - lm) / (2 * eps);
                // float32 losses: central differences carry about 1e-5 of noise.
                assertEquals(fd, g[idx], 1e-4 + 0.05 * Math.abs(fd), name + "[" + idx + "]");
            }
        }
    }
}
