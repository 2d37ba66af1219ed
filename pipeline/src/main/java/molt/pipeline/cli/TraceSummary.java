package molt.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import molt.teacher.InputException;

/**
 * Where a profiled step's time went, op by op: each op's self time (its duration less that of the ops it called) from
 * a Chrome trace as libtorch's profiler writes it (complete events, {@code "ph": "X"}, times in microseconds), summed
 * by op name.
 *
 * @param ops every op name with its calls and self time, most time first
 * @param totalMicros the summed duration of the outermost ops (the time the profiler saw inside libtorch)
 */
record TraceSummary(List<Op> ops, double totalMicros) {
    /** One op name's calls and summed self time in microseconds. */
    record Op(String name, long calls, double selfMicros) {
    }

    /** One traced call: when it started and ended, and the time of the calls nested directly in it. */
    private static final class Call {
        final String name;
        final double start;
        final double end;
        double children;

        Call(String name, double start, double end) {
            this.name = name;
            this.start = start;
            this.end = end;
        }
    }

    static TraceSummary read(Path trace) throws IOException {
        JsonNode root = new ObjectMapper().readTree(trace.toFile());
        JsonNode events = root.isArray() ? root : root.path("traceEvents");
        if (!events.isArray()) {
            throw new InputException(trace + ": expected a Chrome trace (an array of events, or traceEvents)");
        }
        Map<String, List<Call>> byThread = new HashMap<>();
        for (JsonNode e : events) {
            if (!"X".equals(e.path("ph").asText())) {
                continue;
            }
            double ts = e.path("ts").asDouble();
            byThread.computeIfAbsent(e.path("pid").asText() + "/" + e.path("tid").asText(), k -> new ArrayList<>())
                    .add(new Call(e.path("name").asText(), ts, ts + e.path("dur").asDouble()));
        }
        Map<String, double[]> totals = new HashMap<>(); // name -> {calls, self}
        double outermost = 0;
        for (List<Call> calls : byThread.values()) {
            // a parent starts no later than its children and, starting together, lasts longer
            calls.sort(Comparator.comparingDouble((Call c) -> c.start).thenComparing(c -> -c.end));
            Deque<Call> open = new ArrayDeque<>();
            for (Call c : calls) {
                while (!open.isEmpty() && open.peek().end <= c.start) {
                    open.pop();
                }
                if (open.isEmpty()) {
                    outermost += c.end - c.start;
                } else {
                    open.peek().children += c.end - c.start;
                }
                open.push(c);
            }
            for (Call c : calls) {
                double[] t = totals.computeIfAbsent(c.name, k -> new double[2]);
                t[0]++;
                t[1] += Math.max(0, c.end - c.start - c.children);
            }
        }
        List<Op> ops = new ArrayList<>();
        totals.forEach((name, t) -> ops.add(new Op(name, (long) t[0], t[1])));
        ops.sort(Comparator.comparingDouble(Op::selfMicros).reversed().thenComparing(Op::name));
        return new TraceSummary(ops, outermost);
    }

    /** The {@code top} ops by self time as table lines (ms per step, share of the profiled time), then the rest. */
    List<String> lines(int top) {
        List<String> out = new ArrayList<>();
        out.add(String.format("  %-44s %8s %10s %7s", "op (self time)", "calls", "ms", "share"));
        for (int i = 0; i < Math.min(top, ops.size()); i++) {
            Op o = ops.get(i);
            out.add(String.format("  %-44s %,8d %10.1f %6.1f%%", o.name(), o.calls(), o.selfMicros() / 1e3,
                    100 * o.selfMicros() / totalMicros));
        }
        if (ops.size() > top) {
            double rest = ops.stream().skip(top).mapToDouble(Op::selfMicros).sum();
            long calls = ops.stream().skip(top).mapToLong(Op::calls).sum();
            out.add(String.format("  %-44s %,8d %10.1f %6.1f%%", "(" + (ops.size() - top) + " other ops)", calls,
                    rest / 1e3, 100 * rest / totalMicros));
        }
        out.add(String.format("  %-44s %8s %10.1f", "in libtorch's ops, all", "", totalMicros / 1e3));
        return out;
    }
}
