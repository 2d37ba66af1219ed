package molt.pipeline.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import molt.student.StudentCheckpoint;
import molt.teacher.Devices;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.io.Checkpoints;
import molt.teacher.io.WeightSource;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.LlamaModel;

/**
 * Opens any model directory molt can run: a Hugging Face Llama-family teacher or an exported student. Everything
 * a user can get wrong (config, weights, names, shapes) is checked before the device is chosen, so bad input
 * fails with one line and nothing else on the console.
 */
final class Models {
    /** The help of {@code --precision} on the commands that load a model. */
    static final String PRECISION_HELP = "Frozen weights: f32, f16 (half the memory; on CPU each weight is widened "
            + "when used, or multiplied in BF16 where the CPU has AMX) or auto (f16 from 100M parameters). "
            + "Default: ${DEFAULT-VALUE}.";

    private Models() {
    }

    /** The architecture of a model directory (read first, to validate token ids before loading anything). */
    static LlamaConfig config(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new InputException(dir, "not a model directory");
        }
        return StudentCheckpoint.isStudent(dir) ? StudentCheckpoint.baseConfig(dir) : LlamaConfig.read(dir);
    }

    static void checkMode(String mode) {
        if (!mode.equals("parallel") && !mode.equals("recurrent")) {
            throw new InputException("--mode: expected parallel or recurrent, found '" + mode + "'");
        }
    }

    /** Loads the model on the device named by {@code deviceSetting}, frozen weights as F32. */
    static LanguageModel load(Path dir, String deviceSetting) {
        return load(dir, deviceSetting, "f32");
    }

    /**
     * Loads the model on the device named by {@code deviceSetting} (resolved after the files are validated), its
     * frozen weights at {@code precisionSetting} (f32, f16 or auto: chosen by the model's size).
     */
    static LanguageModel load(Path dir, String deviceSetting, String precisionSetting) {
        molt.teacher.Precision precision = molt.teacher.Precision.resolve(precisionSetting,
                LlamaWeights.parameterCount(config(dir)));
        if (StudentCheckpoint.isStudent(dir)) {
            StudentCheckpoint.baseConfig(dir);
            try (WeightSource w = Checkpoints.open(dir)) {
                w.names(); // headers checked before the device is chosen
            }
            return StudentCheckpoint.load(dir, Devices.resolve(deviceSetting), precision);
        }
        LlamaConfig c = config(dir);
        try (WeightSource w = Checkpoints.open(dir)) {
            LlamaWeights.validate(c, w);
            return LlamaModel.fromWeights(c, w, Devices.resolve(deviceSetting), precision);
        }
    }
}
