package molt.pipeline.cli;

import ai.djl.ndarray.NDManager;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import molt.pipeline.eval.DecodeThreads;
import molt.pipeline.eval.DecodeTiming;
import molt.student.StudentCheckpoint;
import molt.teacher.InputException;
import molt.teacher.LlamaConfig;
import molt.teacher.LlamaWeights;
import molt.teacher.model.DecodeEngine;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.LlamaModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code molt bench decode}: single-token decoding speed of a model and, in the same process, of its teacher, at
 * several context lengths. Each model is warmed up first (windows of steps until two in a row agree); then, per
 * context c, it is prefilled with c - tokens - 8 random tokens, decodes 8 untimed steps and then {@code --tokens}
 * timed ones in windows of {@link DecodeTiming#WINDOW}, so the last timed step sees exactly c tokens (and a context
 * of max_position_embeddings can be measured). The rate is the median window; the state's bytes are read when it
 * holds c tokens.
 */
@Command(name = "decode", mixinStandardHelpOptions = true,
        description = "Decode tokens/s and state bytes of a model beside its teacher, at several contexts, in one "
                + "process after a warm-up until steady.")
final class DecodeBench implements Callable<Integer> {
    /** Untimed steps after each prefill. */
    static final int SETTLE = 8;

    @Option(names = "--model", required = true, description = "Model directory (teacher or exported student).")
    Path model;

    @Option(names = "--teacher", description = "Teacher to compare with. Default: a student's base model; none for a "
            + "teacher.")
    Path teacher;

    @Option(names = "--contexts", split = ",", defaultValue = "512,2048,8192",
            description = "Context lengths (tokens held when the last timed step runs). Default: ${DEFAULT-VALUE}.")
    List<Integer> contexts;

    @Option(names = "--tokens", defaultValue = "256",
            description = "Timed decoding steps per context, a multiple of " + DecodeTiming.WINDOW
                    + ". Default: ${DEFAULT-VALUE}.")
    int tokens;

    @Option(names = "--threads", split = ",",
            description = "Intra-op threads; several (1,2) are measured one after the other. Default: the decoding "
                    + "rule for the model's size.")
    List<Integer> threads;

    @Option(names = "--engine", split = ",", defaultValue = "auto",
            description = "Where decoding steps run: auto, djl (libtorch ops) or java (plain Java, CPU); several "
                    + "(djl,java) are measured one after the other, the teacher on the same one. Default: "
                    + "${DEFAULT-VALUE}.")
    List<String> engines;

    @Option(names = "--warmup-seconds", defaultValue = "60",
            description = "Longest warm-up per model. Default: ${DEFAULT-VALUE}.")
    double warmupSeconds;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu, gpu, gpu:N or auto. Default: ${DEFAULT-VALUE}.")
    String device;

    /** One model's measurement at one context, and where its steps ran. */
    record Point(double tokensPerSecond, long stateBytes, String engine) {
    }

    @Override
    public Integer call() {
        if (tokens < DecodeTiming.WINDOW || tokens % DecodeTiming.WINDOW != 0) {
            throw new InputException("--tokens: expected a positive multiple of " + DecodeTiming.WINDOW + ", found "
                    + tokens);
        }
        if (threads != null && threads.stream().anyMatch(t -> t < 1)) {
            throw new InputException("--threads: expected counts >= 1, found " + threads);
        }
        List<DecodeEngine> chosen = engines.stream().map(DecodeEngine::parse).toList();
        LlamaConfig cfg = Models.config(model);
        Path teacherDir = teacher != null ? teacher
                : StudentCheckpoint.isStudent(model) ? StudentCheckpoint.basePath(model) : null;
        LlamaConfig teacherCfg = null;
        if (teacherDir != null) {
            if (!Files.isDirectory(teacherDir)) {
                throw new InputException(teacherDir, "teacher directory missing (pass --teacher)");
            }
            teacherCfg = Models.config(teacherDir);
        }
        int min = tokens + SETTLE + 1;
        for (int c : contexts) {
            if (c < min) {
                throw new InputException("--contexts: " + c + " is too short: a context must hold the prefill, "
                        + SETTLE + " untimed and " + tokens + " timed steps (at least " + min + "; or lower --tokens)");
            }
            check(c, cfg, model);
            if (teacherCfg != null) {
                check(c, teacherCfg, teacherDir);
            }
        }
        List<Integer> counts = threads != null ? threads : new ArrayList<>(List.of(
                DecodeThreads.choose(cfg, Runtime.getRuntime().availableProcessors())));
        try (LanguageModel m = Models.load(model, device);
             LanguageModel t = teacherDir == null ? null : Models.load(teacherDir, device)) {
            System.out.printf("device: %s; %d available processors; decoding rule: %s%n", m.device(),
                    Runtime.getRuntime().availableProcessors(),
                    DecodeThreads.reason(cfg, Runtime.getRuntime().availableProcessors()));
            System.out.printf("model:   %s (%s, %,d parameters)%n", model, kind(model), LlamaWeights.parameterCount(cfg));
            if (t != null) {
                System.out.printf("teacher: %s (%,d parameters)%n", teacherDir, LlamaWeights.parameterCount(teacherCfg));
            }
            System.out.printf("per context c: prefill c-%d random tokens, %d untimed steps, %d timed steps in windows "
                    + "of %d (median); state bytes at c tokens%n", tokens + SETTLE, SETTLE, tokens, DecodeTiming.WINDOW);
            for (DecodeEngine e : chosen) {
                m.setDecodeEngine(e);
                if (t != null) {
                    t.setDecodeEngine(e);
                }
                for (int n : counts) {
                    try (DecodeThreads.Scope s = DecodeThreads.use(cfg, threads != null ? n : null)) {
                        measure(m, t, s.threads(), e);
                    }
                }
            }
        }
        return 0;
    }

    private void measure(LanguageModel m, LanguageModel t, int n, DecodeEngine engine) {
        long maxNanos = (long) (warmupSeconds * 1e9);
        DecodeTiming.WarmUp wm = DecodeTiming.warmUp(m, maxNanos);
        String warm = String.format("warm-up with %d thread%s, engine %s: model %s", n, n == 1 ? "" : "s",
                engine.setting(), describe(wm));
        DecodeTiming.WarmUp wt = null;
        if (t != null) {
            wt = DecodeTiming.warmUp(t, maxNanos);
            warm += "; teacher " + describe(wt);
        }
        System.out.println(warm);
        System.out.printf("%-8s %-8s %-10s %14s %14s %14s %16s %16s%n", "context", "threads", "steps in",
                "model tok/s", "teacher tok/s", "model/teacher", "model state B", "teacher state B");
        for (int c : contexts) {
            Point a = point(m, c);
            Point b = t == null ? null : point(t, c);
            System.out.printf("%-8d %-8d %-10s %14.1f %14s %14s %16d %16s%n", c, n,
                    a.engine() + (b == null ? "" : "/" + b.engine()), a.tokensPerSecond(),
                    b == null ? "-" : String.format("%.1f", b.tokensPerSecond()),
                    b == null ? "-" : String.format("%.2f", a.tokensPerSecond() / b.tokensPerSecond()),
                    a.stateBytes(), b == null ? "-" : String.valueOf(b.stateBytes()));
        }
    }

    private static String describe(DecodeTiming.WarmUp w) {
        return String.format("%.0f ms (%d steps%s)", w.millis(), w.steps(), w.steady() ? ", steady"
                : ", stopped at its limit before two windows agreed");
    }

    /** Prefill to c - tokens - SETTLE, settle, then the timed windows, whose last step sees c tokens. */
    private Point point(LanguageModel model, int c) {
        try (NDManager mgr = NDManager.newBaseManager(model.device());
             LanguageModel.DecodingState st = model.newState()) {
            long[] p = DecodeTiming.randomTokens(model.config().vocabSize(), c - tokens - SETTLE, c);
            prefill(model, mgr, st, p);
            long token = p[p.length - 1];
            for (int i = 0; i < SETTLE; i++) {
                token = DecodeTiming.step(model, mgr, st, token);
            }
            double[] rates = DecodeTiming.windows(model, mgr, st, token, tokens / DecodeTiming.WINDOW);
            return new Point(DecodeTiming.median(rates), st.bytes(), st.engine());
        }
    }

    /**
     * The teacher takes its prompt in pieces of 512 tokens after the first (its attention scores stay [512, c] instead
     * of [c, c]); a student in one parallel prefill.
     */
    private static void prefill(LanguageModel model, NDManager mgr, LanguageModel.DecodingState st, long[] p) {
        int piece = model instanceof LlamaModel ? 512 : p.length;
        for (int i = 0; i < p.length; i += piece) {
            long[] part = java.util.Arrays.copyOfRange(p, i, Math.min(p.length, i + piece));
            model.decode(mgr, st, new long[][] {part}).close();
        }
    }

    private static void check(int c, LlamaConfig cfg, Path dir) {
        if (c > cfg.maxPositionEmbeddings()) {
            throw new InputException(dir, "context " + c + " exceeds the model's max_position_embeddings "
                    + cfg.maxPositionEmbeddings() + " (config.json); choose --contexts up to "
                    + cfg.maxPositionEmbeddings());
        }
    }

    private static String kind(Path dir) {
        return StudentCheckpoint.isStudent(dir) ? "student" : "teacher";
    }
}
