package molt.pipeline.train;

import ai.djl.pytorch.jni.JniUtils;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Op-level profiles of one chosen optimizer step per training stage, through libtorch's profiler: the step's every
 * op with its duration, written as a Chrome trace ({@code chrome://tracing}, Perfetto) to
 * {@code DIR/<stage>-step-<N>.trace.json}. Off unless {@link #request} was called; {@code molt bench scale --profile}
 * turns it on for the step after its timed ones, so the profiler's own cost stays out of the rates it reports.
 */
public final class StepProfiler {
    /** Where traces go and which step (counted from 1 within each stage) is profiled. */
    public record Request(Path dir, long step) {
    }

    private static volatile Request request;

    private StepProfiler() {
    }

    /** Profile step {@code step} of every training stage that runs from now on into {@code dir}. */
    public static void request(Path dir, long step) throws IOException {
        if (step < 1) {
            throw new IllegalArgumentException("steps count from 1, found " + step);
        }
        Files.createDirectories(dir);
        request = new Request(dir, step);
    }

    /** Profile nothing any more. */
    public static void clear() {
        request = null;
    }

    /** The trace of {@code stage}'s step {@code step} under {@code dir}. */
    public static Path trace(Path dir, String stage, long step) {
        return dir.resolve(stage.replace('/', '_') + "-step-" + step + ".trace.json");
    }

    /** Starts the profiler if step {@code step} (from 1) is the one asked for; returns where its trace will go. */
    static Path begin(String stage, long step) {
        Request r = request;
        if (r == null || r.step() != step) {
            return null;
        }
        JniUtils.startProfile(false, false, false); // CPU ops with their input shapes, no memory accounting
        return trace(r.dir(), stage, step);
    }

    /** Stops the profiler started by {@link #begin} and writes its trace (nothing if {@code trace} is null). */
    static void end(Path trace) {
        if (trace != null) {
            JniUtils.stopProfile(trace.toString());
        }
    }
}
