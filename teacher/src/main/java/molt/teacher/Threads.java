package molt.teacher;

import ai.djl.pytorch.jni.JniUtils;

/** PyTorch's intra-op CPU thread count, set at run time (DJL reads its own property only when the engine starts). */
public final class Threads {
    private Threads() {
    }

    /** Sets the intra-op thread count to {@code n} (>= 1) when it differs. */
    public static void set(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("threads must be >= 1, found " + n);
        }
        ai.djl.engine.Engine.getEngine("PyTorch"); // loads the native library the calls below need
        if (JniUtils.getNumThreads() != n) {
            JniUtils.setNumThreads(n);
        }
    }

    /** The current intra-op thread count. */
    public static int current() {
        ai.djl.engine.Engine.getEngine("PyTorch");
        return JniUtils.getNumThreads();
    }
}
