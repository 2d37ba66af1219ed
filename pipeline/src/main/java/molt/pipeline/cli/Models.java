package molt.pipeline.cli;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import molt.teacher.InputException;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.LlamaModel;

/** Opens any model directory molt can run: a Hugging Face Llama-family teacher or an exported student. */
final class Models {
    private Models() {
    }

    static LanguageModel load(Path dir, Device device, String mode) {
        if (!Files.isDirectory(dir)) {
            throw new InputException(dir, "not a model directory");
        }
        if (!mode.equals("parallel") && !mode.equals("recurrent")) {
            throw new InputException("--mode: expected parallel or recurrent, found '" + mode + "'");
        }
        return LlamaModel.load(dir, device);
    }
}
