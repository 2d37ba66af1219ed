package molt.pipeline.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.Map;
import org.junit.jupiter.api.Test;

class AdamWTest {

    @Test
    void matchesTheUpdateRuleWorkedInDouble() {
        double[] w = {0.5, -1.0, 2.0};
        double[] c = {1.0, -3.0, 0.25};
        double lr = 0.1;
        double wd = 0.01;
        double[] m = new double[3];
        double[] v = new double[3];
        try (NDManager nd = NDManager.newBaseManager(Device.cpu())) {
            NDArray p = nd.create(new float[] {0.5f, -1f, 2f});
            p.setRequiresGradient(true);
            NDArray coef = nd.create(new float[] {1f, -3f, 0.25f});
            AdamW opt = new AdamW(nd, wd);
            for (int t = 1; t <= 4; t++) {
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    // loss = sum(c * w^2) / 2: gradient c * w
                    gc.backward(p.square().mul(coef).sum().div(2));
                }
                opt.update(Map.of("p", p), lr, 1.0);
                for (int i = 0; i < 3; i++) {
                    double g = c[i] * w[i];
                    m[i] = 0.9 * m[i] + 0.1 * g;
                    v[i] = 0.999 * v[i] + 0.001 * g * g;
                    double mh = m[i] / (1 - Math.pow(0.9, t));
                    double vh = v[i] / (1 - Math.pow(0.999, t));
                    w[i] -= lr * (mh / (Math.sqrt(vh) + 1e-8) + wd * w[i]);
                }
                float[] got = p.toFloatArray();
                for (int i = 0; i < 3; i++) {
                    assertEquals(w[i], got[i], 1e-5, "step " + t + " weight " + i);
                }
                assertEquals(0f, p.getGradient().abs().sum().getFloat(), "gradients are zeroed");
            }
            assertEquals(4, opt.step());
        }
    }

    @Test
    void theCosineScheduleWarmsUpThenDecaysToItsFloor() {
        // lr 1, warmup 4, floor 0.1, 14 steps: 0.25, 0.5, 0.75, 1 (step 3 ends the warmup), then cosine over steps 4..13.
        assertEquals(0.25, LearningRate.cosine(1, 4, 0.1, 0, 14), 1e-12);
        assertEquals(1.0, LearningRate.cosine(1, 4, 0.1, 3, 14), 1e-12);
        assertEquals(1.0, LearningRate.cosine(1, 4, 0.1, 4, 14), 1e-12);
        assertEquals(0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * 5 / 9)), LearningRate.cosine(1, 4, 0.1, 9, 14), 1e-12);
        assertEquals(0.1, LearningRate.cosine(1, 4, 0.1, 13, 14), 1e-12);
        assertEquals(0.3, LearningRate.cosine(3, 0, 0.1, 99, 100), 1e-12);
    }
}
