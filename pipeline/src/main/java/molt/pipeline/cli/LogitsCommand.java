package molt.pipeline.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import molt.teacher.InputException;
import molt.teacher.io.DType;
import molt.teacher.io.SafetensorsWriter;
import molt.teacher.model.LanguageModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code molt logits}: one sequence's logits into a safetensors file. */
@Command(name = "logits", mixinStandardHelpOptions = true,
        description = "Write the logits [T, vocab] (F32, tensor 'logits') of one token sequence to a safetensors file.")
public final class LogitsCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "Model directory (teacher or exported student).")
    Path model;

    @Option(names = "--tokens", description = "Comma-separated token ids, e.g. 5,17,3.")
    String tokens;

    @Option(names = "--text", description = "Text to encode with the model's tokenizer (adds its special tokens; "
            + "the ids are written as 'input_ids' [T], I64).")
    String text;

    @Option(names = "--out", required = true, description = "Output safetensors file.")
    Path out;

    @Option(names = "--mode", defaultValue = "parallel",
            description = "parallel (one forward) or recurrent (prefill nothing, then token by token). Default: ${DEFAULT-VALUE}.")
    String mode;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu, gpu, gpu:N or auto. Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--precision", defaultValue = "f32", description = Models.PRECISION_HELP)
    String precision;

    @Override
    public Integer call() throws Exception {
        Models.checkMode(mode);
        int vocab = Models.config(model).vocabSize();
        long[] ids = TokenInput.resolve(tokens, text, model, vocab);
        Path parent = out.toAbsolutePath().getParent();
        if (parent == null || !java.nio.file.Files.isDirectory(parent)) {
            throw new InputException(out, "--out: the directory " + parent + " does not exist");
        }
        if (java.nio.file.Files.isDirectory(out)) {
            throw new InputException(out, "--out: is a directory (expected a file name to write)");
        }
        try (LanguageModel m = Models.load(model, device, precision)) {
            float[] logits;
            try (NDManager nd = NDManager.newBaseManager(m.device())) {
                if (mode.equals("parallel")) {
                    logits = m.logits(nd, new long[][] {ids}).toFloatArray();
                } else {
                    logits = new float[ids.length * vocab];
                    try (LanguageModel.DecodingState s = m.newState()) {
                        for (int t = 0; t < ids.length; t++) {
                            try (NDArray step = m.decode(nd, s, new long[][] {{ids[t]}})) {
                                System.arraycopy(step.toFloatArray(), 0, logits, t * vocab, vocab);
                            }
                        }
                    }
                }
            }
            List<SafetensorsWriter.Tensor> tensors = new ArrayList<>();
            tensors.add(SafetensorsWriter.Tensor.ofFloats("logits", DType.F32, new long[] {ids.length, vocab}, logits));
            if (text != null) {
                tensors.add(SafetensorsWriter.Tensor.ofLongs("input_ids", DType.I64, new long[] {ids.length}, ids));
            }
            SafetensorsWriter.write(out, tensors, Map.of("model", model.toString(), "mode", mode));
            System.out.println("wrote logits [" + ids.length + ", " + vocab + "] to " + out + " (" + mode + ", "
                    + m.device() + ")");
        }
        return 0;
    }
}
