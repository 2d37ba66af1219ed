package molt.pipeline.run;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Turns SIGTERM (and Ctrl-C) into a polite request: a shutdown hook raises a flag that training loops poll
 * between steps; the loop writes a checkpoint and returns, and the hook waits (bounded) until the run says it
 * has stopped, so the JVM exits only after the checkpoint is on disk.
 */
public final class StopSignal implements AutoCloseable {
    private static final Logger LOG = LogManager.getLogger(StopSignal.class);
    private final AtomicBoolean requested = new AtomicBoolean();
    private final java.util.concurrent.atomic.AtomicLong pollsLeft = new java.util.concurrent.atomic.AtomicLong(-1);
    private final CountDownLatch finished = new CountDownLatch(1);
    private final Thread hook;

    private StopSignal(boolean install) {
        hook = new Thread(() -> {
            requested.set(true);
            LOG.warn("stop requested: finishing the current step and writing a checkpoint");
            try {
                if (!finished.await(120, TimeUnit.SECONDS)) {
                    LOG.error("run did not stop within 120 s of the stop request");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "molt-stop");
        if (install) {
            Runtime.getRuntime().addShutdownHook(hook);
        }
    }

    /** Installs the shutdown hook; close it when the run ends. */
    public static StopSignal install() {
        return new StopSignal(true);
    }

    /** A signal that is never raised by the OS (tests raise it with {@link #request()}). */
    public static StopSignal manual() {
        return new StopSignal(false);
    }

    /**
     * A signal that raises itself once {@link #requested()} has been asked {@code polls} times: a stage stops as if
     * the process had been told to (checkpoint, then {@code StageStopped}). Fault injection for tests of resumes and
     * of distributed retries (molt-spark's {@code spark.molt.faults.stopOnce}).
     */
    public static StopSignal afterPolls(long polls) {
        StopSignal s = new StopSignal(false);
        s.pollsLeft.set(polls);
        return s;
    }

    public boolean requested() {
        if (pollsLeft.get() >= 0 && pollsLeft.getAndDecrement() <= 1) {
            requested.set(true);
        }
        return requested.get();
    }

    public void request() {
        requested.set(true);
    }

    /** Tells a waiting shutdown hook that the run has stopped and everything is written. */
    @Override
    public void close() {
        finished.countDown();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException | IllegalArgumentException e) {
            // Already shutting down (the hook is running) or never installed.
        }
    }
}
