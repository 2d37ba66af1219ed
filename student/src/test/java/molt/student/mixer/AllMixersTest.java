package molt.student.mixer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import org.junit.jupiter.api.Test;

/** Every registered mixer: its registry entry, and decoding that leaves a fixed-size state and no arrays behind. */
class AllMixersTest {
    private static final int H = 2;
    private static final int D = 8;
    private static final int M = 12;
    private static final MixerSettings SETTINGS = new MixerSettings(4, 8, 16, -2.197);

    @Test
    void decodingKeepsStateSizeAndArrayCountFlat() {
        assertTrue(MixerRegistry.names().containsAll(List.of("hedgehog", "hedgehog_window", "retention", "gla",
                "gla_liger", "gla_liger_window", "gated_deltanet", "mamba2")));
        for (String name : MixerRegistry.names()) {
            try (NDManager params = NDManager.newBaseManager(Device.cpu())) {
                Mixer mx = MixerRegistry.create(name, params, H, D, M, SETTINGS);
                mx.setTrainable(false);
                int held = params.getManagedArrays().size();
                AttentionState st;
                try (NDManager pre = params.newSubManager()) {
                    NDArray x = pre.randomNormal(new Shape(1, H, 40, D));
                    AttentionInput in = new AttentionInput(pre.randomNormal(new Shape(1, 40, M)), x, x, x, x, x);
                    st = mx.forward(pre, in, true).state();
                }
                MixerHarness.assertDecodingFlat(params, mx, st, 200, 0, 1, scope -> {
                    NDArray x = scope.randomNormal(new Shape(1, H, 1, D));
                    return new AttentionInput(scope.randomNormal(new Shape(1, 1, M)), x, x, x, x, x);
                });
                assertEquals(held, params.getManagedArrays().size(), name + ": arrays left in the parameters' manager");
                st.close();
            }
        }
    }

    /** The registry's shapes are those of the parameters the mixer makes, in the same order, with nothing allocated. */
    @Test
    void registryReportsEachMixersParameterShapes() {
        for (String name : MixerRegistry.names()) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                Map<String, Shape> made = new LinkedHashMap<>();
                Mixer mx = MixerRegistry.create(name, m, H, D, M, SETTINGS);
                mx.parameters().forEach((k, p) -> made.put(k, p.getShape()));
                Map<String, Shape> reported = MixerRegistry.parameterShapes(name, H, D, M, SETTINGS);
                assertEquals(List.copyOf(made.entrySet()), List.copyOf(reported.entrySet()), name);
            }
        }
        assertTrue(MixerRegistry.parameterShapes(MixerRegistry.SOFTMAX, H, D, M, SETTINGS).isEmpty());
    }

    /** The counts that `molt validate` printed before it asked the registry, from its former per-mixer formulas. */
    @Test
    void parameterCountsMatchTheMixersDefinitions() {
        long hd = (long) H * D;
        long f = SETTINGS.featureDim();
        Map<String, Long> want = new LinkedHashMap<>();
        want.put("hedgehog", 2 * hd * f);
        want.put("hedgehog_window", 2 * hd * f + H);
        want.put("retention", hd);
        want.put("gla", H * (2L * D * 16 + 2L * D));
        want.put("gla_liger", 0L);
        want.put("gla_liger_window", 0L);
        want.put("mamba2", 3 * (hd * 4 + hd) + M * hd + (long) M * H + 3L * H + hd);
        want.put("gated_deltanet", 3 * (hd * 4 + hd) + 2L * M * H + 2L * H + M * hd + hd);
        want.put(MixerRegistry.SOFTMAX, 0L);
        want.forEach((name, n) -> assertEquals(n, MixerRegistry.parameterCount(name, H, D, M, SETTINGS), name));
    }
}
