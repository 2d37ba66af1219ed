package molt.student.mixer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import molt.teacher.model.AttentionInput;
import molt.teacher.model.AttentionState;
import org.junit.jupiter.api.Test;

/** Every registered mixer: prefill then decode leaves a fixed-size state and no arrays behind. */
class AllMixersTest {

    @Test
    void decodingKeepsStateSizeAndArrayCountFlat() {
        int h = 2;
        int d = 8;
        int m = 12;
        assertTrue(MixerRegistry.names().containsAll(java.util.List.of("hedgehog", "hedgehog_window", "retention", "gla",
                "gla_liger", "gated_deltanet", "mamba2")));
        for (String name : MixerRegistry.names()) {
            try (NDManager params = NDManager.newBaseManager(Device.cpu())) {
                Mixer mx = MixerRegistry.create(name, params, h, d, m, new MixerSettings(4, 8, 16, -2.197));
                mx.setTrainable(false);
                int held = params.getManagedArrays().size();
                AttentionState st;
                try (NDManager pre = params.newSubManager()) {
                    NDArray x = pre.randomNormal(new Shape(1, h, 40, d));
                    st = mx.forward(pre, new AttentionInput(pre.randomNormal(new Shape(1, 40, m)), x, x, x, x, x), true).state();
                }
                long bytes = st.bytes();
                for (int i = 0; i < 200; i++) {
                    try (NDManager scope = params.newSubManager()) {
                        NDArray x = scope.randomNormal(new Shape(1, h, 1, d));
                        mx.step(scope, st, new AttentionInput(scope.randomNormal(new Shape(1, 1, m)), x, x, x, x, x));
                    }
                }
                assertEquals(bytes, st.bytes(), name + ": state bytes after prefill vs 200 steps later");
                assertEquals(held, params.getManagedArrays().size(), name + ": arrays left in the parameters' manager");
                st.close();
            }
        }
    }
}
