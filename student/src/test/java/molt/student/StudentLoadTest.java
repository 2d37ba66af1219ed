package molt.student;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import molt.student.mixer.MixerSettings;
import molt.teacher.InputException;
import molt.teacher.model.LlamaModel;
import molt.teacher.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading a student's weights reports every problem at once. */
class StudentLoadTest {

    @Test
    void everyMissingOrMisSizedTensorIsListed(@TempDir Path tmp) {
        Path teacher = TinyCheckpoints.builder().layers(3).write(tmp.resolve("teacher"));
        try (StudentModel s = StudentModel.create(LlamaModel.load(teacher, Device.cpu()), teacher,
                new StudentPlan(List.of("hedgehog_window", "softmax", "hedgehog")), new MixerSettings(4, 4, 8, -2))) {
            Map<String, float[]> values = new HashMap<>();
            for (Map.Entry<String, NDArray> e : s.mixerParameters().entrySet()) {
                values.put(e.getKey(), new float[(int) e.getValue().size()]);
            }
            String gone1 = "model.layers.0.self_attn.mixer.window_factor";
            String gone2 = "model.layers.2.self_attn.mixer.feature_map_k.weight";
            String small = "model.layers.2.self_attn.mixer.feature_map_q.weight";
            values.remove(gone1);
            values.remove(gone2);
            values.put(small, new float[3]);
            InputException e = assertThrows(InputException.class, () -> s.loadMixerParameters(values));
            for (String name : new String[] {gone1 + ": missing", gone2 + ": missing", small + ": expected"}) {
                assertTrue(e.getMessage().contains(name), e.getMessage());
            }
            assertTrue(e.getMessage().contains("3 problem(s)"), e.getMessage());
        }
    }
}
