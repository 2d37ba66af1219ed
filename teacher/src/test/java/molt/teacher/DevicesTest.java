package molt.teacher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;

class DevicesTest {

    @Test
    void cpuAndDefaultResolveToCpu() {
        assertEquals(Device.cpu(), Devices.resolve("cpu"));
        assertEquals(Device.cpu(), Devices.resolve(null));
        assertEquals(Device.cpu(), Devices.resolve(" CPU "));
    }

    @Test
    void autoPicksWhatTheEngineHas() {
        Device d = Devices.resolve("auto");
        assertEquals(Engine.getInstance().getGpuCount() > 0 ? Device.gpu(0) : Device.cpu(), d);
    }

    @Test
    void gpuWithoutAGpuIsAnInputErrorNotAFallback() {
        int gpus = Engine.getInstance().getGpuCount();
        InputException e = assertThrows(InputException.class, () -> Devices.resolve("gpu:" + gpus));
        assertTrue(e.getMessage().contains("GPU"), e.getMessage());
    }

    @Test
    void malformedSettingsAreRejected() {
        assertThrows(InputException.class, () -> Devices.resolve("tpu"));
        assertThrows(InputException.class, () -> Devices.resolve("gpu:x"));
        assertThrows(InputException.class, () -> Devices.resolve("gpu:-1"));
    }

    @Test
    void engineComputesOnCpuOffline() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray a = m.create(new float[] {1, 2, 3, 4}, new ai.djl.ndarray.types.Shape(2, 2));
            float[] c = a.matMul(a).toFloatArray();
            assertEquals(7f, c[0]);
            assertEquals(22f, c[3]);
        }
    }
}
