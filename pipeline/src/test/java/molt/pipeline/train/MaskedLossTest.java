package molt.pipeline.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Random;
import molt.data.BatchReader;
import org.junit.jupiter.api.Test;

class MaskedLossTest {

    @Test
    void crossEntropyCountsOnlyMaskedTargets() {
        int t = 6;
        int v = 5;
        Random r = new Random(2);
        float[] logits = new float[t * v];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) r.nextGaussian();
        }
        long[] row = {1, 3, 0, 4, 2, 2, 1};
        long[] mask = {1, 0, 0, 1, 1, 0, 1}; // targets are row[1..6], masks mask[1..6]
        double sum = 0;
        double all = 0;
        int n = 0;
        for (int p = 0; p < t; p++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) {
                max = Math.max(max, logits[p * v + j]);
            }
            double z = 0;
            for (int j = 0; j < v; j++) {
                z += Math.exp(logits[p * v + j] - max);
            }
            double nll = -(logits[p * v + (int) row[p + 1]] - max - Math.log(z));
            all += nll / t;
            if (mask[p + 1] == 1) {
                sum += nll;
                n++;
            }
        }
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            var lg = m.create(logits, new Shape(1, t, v));
            BatchReader.Batch masked = new BatchReader.Batch(new long[][] {row}, new long[][] {mask}, null, null);
            BatchReader.Batch plain = new BatchReader.Batch(new long[][] {row}, null, null, null);
            assertEquals(sum / n, LoraFinetuneStage.crossEntropy(m, lg, masked).getFloat(), 1e-5);
            assertEquals(all, LoraFinetuneStage.crossEntropy(m, lg, plain).getFloat(), 1e-5);
        }
    }

    @Test
    void klCountsOnlyMaskedTargetsToo() {
        int t = 6;
        int v = 4;
        Random r = new Random(5);
        double[][] pt = new double[t][v];
        double[][] ps = new double[t][v];
        float[] lt = new float[t * v];
        float[] ls = new float[t * v];
        for (int p = 0; p < t; p++) {
            double zt = 0;
            double zs = 0;
            for (int j = 0; j < v; j++) {
                pt[p][j] = Math.exp(r.nextGaussian());
                ps[p][j] = Math.exp(r.nextGaussian());
                zt += pt[p][j];
                zs += ps[p][j];
            }
            for (int j = 0; j < v; j++) {
                pt[p][j] /= zt;
                ps[p][j] /= zs;
                lt[p * v + j] = (float) Math.log(pt[p][j]);
                ls[p * v + j] = (float) Math.log(ps[p][j]);
            }
        }
        long[] row = {1, 3, 0, 2, 2, 2, 1};
        long[] mask = {0, 0, 0, 1, 1, 0, 1}; // only positions 2, 3 and 5 predict a response token
        double masked = 0;
        double all = 0;
        for (int p = 0; p < t; p++) {
            double kl = 0;
            for (int j = 0; j < v; j++) {
                kl += pt[p][j] * (Math.log(pt[p][j]) - Math.log(ps[p][j]));
            }
            all += kl / t;
            masked += mask[p + 1] == 1 ? kl / 3 : 0;
        }
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            var teacher = m.create(lt, new Shape(1, t, v));
            var student = m.create(ls, new Shape(1, t, v));
            BatchReader.Batch withMask = new BatchReader.Batch(new long[][] {row}, new long[][] {mask}, null, null);
            BatchReader.Batch plain = new BatchReader.Batch(new long[][] {row}, null, null, null);
            assertEquals(masked, LoraFinetuneStage.klDivergence(m, teacher, student, withMask, null).getFloat(), 1e-5);
            assertEquals(all, LoraFinetuneStage.klDivergence(m, teacher, student, plain, null).getFloat(), 1e-5);
        }
    }
}
