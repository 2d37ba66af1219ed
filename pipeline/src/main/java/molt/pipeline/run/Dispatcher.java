package molt.pipeline.run;

import java.io.IOException;
import java.util.List;

/**
 * Executes a run's independent units ({@link Unit}). {@link #IN_PROCESS} runs them one after another in this
 * process, into the run's own metrics and log; a distributed dispatcher (molt-spark's) runs them as parallel tasks
 * elsewhere, each of which opens the run's directory with {@link Runner.Session#open} and calls
 * {@link Runner.Session#execute}. Every unit writes only its own files, so the result does not depend on the order.
 */
public interface Dispatcher {

    /** Units one after another, here. */
    Dispatcher IN_PROCESS = new Dispatcher() {
        @Override
        public boolean distributed() {
            return false;
        }

        @Override
        public double[] run(Runner.Session session, List<Unit> units) throws IOException {
            double[] seconds = new double[units.size()];
            for (int i = 0; i < units.size(); i++) {
                long t0 = System.nanoTime();
                session.execute(units.get(i), session.metrics(), List.of());
                seconds[i] = (System.nanoTime() - t0) / 1e9;
            }
            return seconds;
        }
    };

    /**
     * Whether units run apart from this process. A distributed run splits its work further (top-k targets per
     * shard, attention transfer per layer group) and runs the stages of different student chains side by side.
     */
    boolean distributed();

    /**
     * Executes every unit and returns once all have succeeded (a failed unit's retries are the dispatcher's
     * business), with the seconds each took; throws when one fails for good.
     */
    double[] run(Runner.Session session, List<Unit> units) throws IOException;
}
