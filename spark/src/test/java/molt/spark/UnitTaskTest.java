package molt.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** A task computes on the GPU Spark assigned it when the config leaves the choice of GPU open. */
class UnitTaskTest {
    @Test
    void theAssignedGpuReplacesGpuAndAutoButNotAnExplicitChoice() {
        String[] assigned = {"3"};
        assertEquals("gpu:3", UnitTask.deviceFor("gpu", assigned));
        assertEquals("gpu:3", UnitTask.deviceFor("auto", assigned));
        assertEquals("gpu:1", UnitTask.deviceFor("gpu:1", assigned));
        assertEquals("cpu", UnitTask.deviceFor("cpu", assigned));
        assertEquals("gpu", UnitTask.deviceFor("gpu", new String[0]), "no GPU scheduling: the config's setting");
    }
}
