package molt.pipeline.run;

import java.nio.file.Files;
import java.nio.file.Path;
import molt.data.DocumentSource;
import molt.data.Sources;
import molt.pipeline.config.EvaluateSpec;
import molt.pipeline.config.RunConfig;
import molt.pipeline.config.StageSpec;
import molt.pipeline.train.TeacherPretrainStage;
import molt.teacher.Devices;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.tokenizer.Tokenizers;

/**
 * Everything a run can check before it writes anything, so that a refused run leaves no trace in its directory
 * and {@code molt validate} fails exactly where {@code molt run} would: the output directory, the device, the
 * teacher (its config and tokenizer), every student's plan against the teacher's layers, the data source, and the
 * sizes that must fit the teacher's positions.
 */
public final class Preflight {
    private Preflight() {
    }

    /** Checks {@code cfg}; returns the teacher's architecture (the pretrained teacher's when a stage makes it). */
    public static LlamaConfig check(RunConfig cfg) {
        checkOutputDir(cfg.outputDir());
        Devices.resolve(cfg.device());
        LlamaConfig c = teacher(cfg);
        cfg.student().plan(c.numLayers());
        for (RunConfig.Variant v : cfg.variants()) {
            v.student().plan(c.numLayers());
        }
        if (cfg.data().seqLen() > c.maxPositionEmbeddings()) {
            throw new InputException("data.seq_len " + cfg.data().seqLen() + " exceeds the teacher's "
                    + "max_position_embeddings " + c.maxPositionEmbeddings());
        }
        for (StageSpec s : cfg.stages()) {
            if (s instanceof EvaluateSpec e) {
                try {
                    e.settings().checkFits(c);
                } catch (InputException ex) {
                    throw new InputException("stage '" + s.name() + "': " + ex.getMessage());
                }
            }
        }
        String first = cfg.data().promptColumn() != null ? cfg.data().promptColumn() : cfg.data().column();
        try (DocumentSource src = Sources.open(cfg.data().source(), first, cfg.data().responseColumn())) {
            src.identity();
        }
        return c;
    }

    /** The teacher's architecture; a teacher on disk must be a model directory whose tokenizer molt can use. */
    private static LlamaConfig teacher(RunConfig cfg) {
        if (cfg.pretrainStage() != null) {
            return TeacherPretrainStage.config(cfg.pretrainStage().pretrain());
        }
        Path t = cfg.teacher();
        if (!Files.isRegularFile(t.resolve("config.json"))) {
            throw new InputException(t, "teacher.path: not a model directory (no config.json)");
        }
        LlamaConfig c = LlamaConfig.read(t);
        Tokenizers.load(t);
        return c;
    }

    /** The output directory is a directory (or can become one): not a file, nor under a file. */
    private static void checkOutputDir(Path dir) {
        for (Path p = dir.toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.exists(p) && !Files.isDirectory(p)) {
                throw new InputException(dir, "output_dir: " + (p.equals(dir.toAbsolutePath()) ? "is a file"
                        : p + " is a file") + " (expected a directory)");
            }
            if (Files.isDirectory(p)) {
                if (!Files.isWritable(p)) {
                    throw new InputException(dir, "output_dir: " + p + " is not writable");
                }
                return;
            }
        }
    }
}
