package molt.pipeline.run;

import com.sun.jna.Library;
import com.sun.jna.Native;
import java.io.OutputStream;
import java.io.PrintStream;

/**
 * A live progress line on a terminal: stage, step of total with a bar, loss, tokens/s and ETA, redrawn in place on
 * stderr after every optimizer step. Log lines still appear: each one clears the bar first and the bar is drawn again
 * below it ({@link BarStream} wraps System.err, which Log4j's console appender follows). Off unless {@link #start}
 * is called, which {@code molt run} does when stderr is a terminal and {@code --no-progress} is not given; otherwise
 * the plain log lines are all there is.
 */
public final class Progress {
    private static volatile BarStream stream;

    private Progress() {
    }

    /** True when file descriptor 2 (stderr) is a terminal (Linux and macOS; false elsewhere or on failure). */
    public static boolean stderrIsTerminal() {
        try {
            interface CLib extends Library {
                int isatty(int fd);
            }
            return Native.load("c", CLib.class).isatty(2) == 1;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    /** Starts drawing on the current System.err (which it replaces with a wrapper until {@link #stop}). */
    public static synchronized void start() {
        if (stream == null) {
            stream = new BarStream(System.err);
            System.setErr(new PrintStream(stream, true));
        }
    }

    /** Clears the bar and restores System.err. */
    public static synchronized void stop() {
        if (stream != null) {
            stream.show("");
            System.setErr(stream.out);
            stream = null;
        }
    }

    /** True while a bar is drawn. */
    public static boolean active() {
        return stream != null;
    }

    /** Shows a stage's state after optimizer step {@code step} of {@code total} (nothing when not started). */
    public static void step(String stage, long step, long total, double loss, double tokensPerSecond,
                            double etaSeconds) {
        BarStream s = stream;
        if (s != null) {
            s.show(line(stage, step, total, loss, tokensPerSecond, etaSeconds, 24));
        }
    }

    /** The progress line: {@code stage [#####.....] step/total loss L N tok/s ETA 1h02m}. */
    static String line(String stage, long step, long total, double loss, double tokensPerSecond, double etaSeconds,
                       int width) {
        int filled = total <= 0 ? 0 : (int) Math.min(width, width * step / total);
        return String.format("%s [%s%s] %d/%d loss %.4f %.0f tok/s ETA %s", stage, "#".repeat(filled),
                ".".repeat(width - filled), step, total, loss, tokensPerSecond, duration(etaSeconds));
    }

    /** 45s, 12m05s or 3h07m. */
    static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "-";
        }
        long s = Math.round(seconds);
        if (s < 60) {
            return s + "s";
        }
        if (s < 3600) {
            return String.format("%dm%02ds", s / 60, s % 60);
        }
        return String.format("%dh%02dm", s / 3600, (s % 3600) / 60);
    }

    /**
     * stderr with a bar on its last line: output clears the bar first (carriage return, erase line) and, once a line
     * is complete, draws it again.
     */
    static final class BarStream extends OutputStream {
        private static final byte[] CLEAR = "\r\033[K".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        final PrintStream out;
        private String bar = "";
        private boolean drawn;
        private boolean lineStart = true;

        BarStream(PrintStream out) {
            this.out = out;
        }

        /** Replaces the bar ("" removes it). */
        synchronized void show(String text) {
            if (drawn) {
                out.write(CLEAR, 0, CLEAR.length);
                drawn = false;
            }
            bar = text;
            draw();
        }

        private void draw() {
            if (!bar.isEmpty() && lineStart) {
                out.print(bar);
                drawn = true;
            }
            out.flush();
        }

        @Override
        public synchronized void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) {
            if (len == 0) {
                return;
            }
            if (drawn) {
                out.write(CLEAR, 0, CLEAR.length);
                drawn = false;
            }
            out.write(b, off, len);
            lineStart = b[off + len - 1] == '\n';
            draw();
        }

        @Override
        public synchronized void flush() {
            out.flush();
        }
    }
}
