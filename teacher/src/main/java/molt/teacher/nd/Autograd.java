package molt.teacher.nd;

import ai.djl.pytorch.jni.JniUtils;

/**
 * PyTorch's autograd switch is per thread and on in a new thread, while DJL keeps it off except inside a
 * GradientCollector, but sets it off only in the thread that loaded the engine. A thread that runs molt's work for
 * someone else (a Spark task, the server's worker) calls {@link #offForThisThread} first, so it computes exactly what
 * the main thread would: no graphs recorded outside training, and the same attention form ({@link FusedAttention}
 * applies while autograd is off).
 */
public final class Autograd {
    private Autograd() {
    }

    /** Turns autograd off for the calling thread (DJL's state outside a GradientCollector). */
    public static void offForThisThread() {
        JniUtils.setGradMode(false);
    }
}
