package molt.pipeline.eval;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;
import molt.teacher.LlamaConfig;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * How many intra-op threads PyTorch gets while a model decodes one token at a time. A decoding step is a chain of
 * small ops (a [1, H] row through [H, H'] matrices); below a certain model width, splitting each of them across
 * threads costs more than it saves (measured with {@code molt bench decode}, docs/BENCHMARKS.md "Decoding speed"), so
 * narrow models decode with one thread and wide ones with every core. The rule lives here alone; commands that decode
 * take an explicit {@code --threads} instead. Training keeps the config's {@code threads:}: {@link #use} restores
 * the previous count when it is closed.
 */
public final class DecodeThreads {
    private static final Logger LOG = LogManager.getLogger(DecodeThreads.class);

    /**
     * Models at least this wide (hidden_size) decode with every core; narrower ones with one thread. Measured on the
     * 2-core machine (2026-12-02, with another developer's jobs on it): one thread was 7-12x faster than two at hidden
     * 128 (the quickstart), 1024 and 2048 (a [1, 2048] row through 2048 x 5440 matrices is still too little work to
     * split); 4096 is the first width not shown to lose from splitting, so the rule switches there.
     */
    public static final int WIDE_HIDDEN = 4096;

    private DecodeThreads() {
    }

    /** The rule: 1 thread below {@link #WIDE_HIDDEN}, {@code processors} from there. */
    public static int choose(LlamaConfig c, int processors) {
        return c.hiddenSize() < WIDE_HIDDEN ? 1 : Math.max(1, processors);
    }

    /** Why {@link #choose} chose what it did, for the log. */
    public static String reason(LlamaConfig c, int processors) {
        return c.hiddenSize() < WIDE_HIDDEN
                ? "hidden " + c.hiddenSize() + " < " + WIDE_HIDDEN + ": one thread"
                : "hidden " + c.hiddenSize() + " >= " + WIDE_HIDDEN + ": all " + processors + " cores";
    }

    /** The intra-op thread count in force on this thread (starts the engine if needed). */
    public static int current() {
        Engine.getEngine("PyTorch");
        return JniUtils.getNumThreads();
    }

    /**
     * Sets the decoding thread count for {@code c}: {@code override} when not null, else the rule; logs the choice
     * and returns a handle that restores the previous count when closed. PyTorch's count applies to ops started on
     * the calling thread, so set it on the thread that decodes.
     */
    public static Scope use(LlamaConfig c, Integer override) {
        int processors = Runtime.getRuntime().availableProcessors();
        int n = override != null ? override : choose(c, processors);
        if (n < 1) {
            throw new molt.teacher.InputException("--threads: expected >= 1, found " + n);
        }
        int before = current();
        if (n != before) {
            JniUtils.setNumThreads(n);
        }
        LOG.info("decoding with {} intra-op thread{} ({})", n, n == 1 ? "" : "s",
                override != null ? "--threads" : reason(c, processors));
        return new Scope(n, before);
    }

    /** A thread count in force until {@link #close}, which restores the one before. */
    public static final class Scope implements AutoCloseable {
        private final int threads;
        private final int before;

        private Scope(int threads, int before) {
            this.threads = threads;
            this.before = before;
        }

        /** The count in force. */
        public int threads() {
            return threads;
        }

        @Override
        public void close() {
            if (threads != before) {
                JniUtils.setNumThreads(before);
            }
        }
    }
}
