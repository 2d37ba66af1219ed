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
}
