package molt.teacher.io;

import ai.djl.ndarray.NDArray;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import molt.teacher.io.DType;
import molt.teacher.io.SafetensorsFile;
import molt.teacher.io.SafetensorsWriter;

/** Named F32 arrays to and from safetensors (exact round trip). */
public final class WeightsFile {
    private WeightsFile() {
    }

    public static void write(Path file, Map<String, NDArray> arrays, Map<String, String> metadata) throws IOException {
        List<SafetensorsWriter.Tensor> t = new ArrayList<>();
        for (Map.Entry<String, NDArray> e : arrays.entrySet()) {
            t.add(SafetensorsWriter.Tensor.ofFloats(e.getKey(), DType.F32, e.getValue().getShape().getShape(),
                    molt.teacher.nd.NativeArrays.values(e.getValue())));
        }
        SafetensorsWriter.write(file, t, metadata);
    }

    public static Map<String, float[]> read(Path file) {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String n : f.names()) {
                out.put(n, Floats.requireFinite(file, n, f.readFloats(n)));
            }
        }
        return out;
    }

    /** Sets every array of {@code into} whose name is in {@code values}; returns how many were set. */
    public static int load(Map<String, NDArray> into, Map<String, float[]> values) {
        int n = 0;
        for (Map.Entry<String, NDArray> e : into.entrySet()) {
            float[] v = values.get(e.getKey());
            if (v != null) {
                molt.teacher.nd.InPlace.copy(e.getValue(), v);
                n++;
            }
        }
        return n;
    }
}
