package molt.pipeline.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import molt.data.BatchReader;
import molt.data.PreparedDataset;
import molt.data.probes.RecallProbes;
import molt.teacher.model.LanguageModel;
import molt.teacher.tokenizer.TextTokenizer;

/**
 * Evaluates a teacher or a student the same way: held-out perplexity, repeated-span recall at several distances,
 * and decoding speed and state memory at several context lengths.
 */
public final class Evaluator {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What to measure. */
    public record Settings(int sequences, List<Integer> distances, int probes, int spanChars, List<Integer> contexts,
                           int decodeSteps) {

        /**
         * Refuses, before anything is computed, a probe distance or decoding context that does not fit the model's
         * positions: a recall probe spans its distance plus two copies of the span, a decoding measurement its
         * context plus the warm-up and timed steps.
         */
        public void checkFits(molt.teacher.LlamaConfig c) {
            int max = c.maxPositionEmbeddings();
            for (int d : distances) {
                long need = (long) d + 2L * spanChars + 2;
                if (need > max) {
                    throw new molt.teacher.InputException("distance " + d + ": a recall probe needs about " + need
                            + " positions, the model has max_position_embeddings " + max);
                }
            }
            for (int ctx : contexts) {
                long need = (long) ctx + WARMUP_STEPS + decodeSteps;
                if (need > max) {
                    throw new molt.teacher.InputException("context " + ctx + ": decoding it and " + (need - ctx)
                            + " more tokens needs " + need + " positions, the model has max_position_embeddings " + max);
                }
            }
        }
    }

    /** Untimed decoding steps before the timed ones (first calls are slower). */
    private static final int WARMUP_STEPS = 8;
    /** The longest the model-wide decoding warm-up may take. */
    private static final long WARMUP_LIMIT_NANOS = 5_000_000_000L;
    private static final org.apache.logging.log4j.Logger LOG =
            org.apache.logging.log4j.LogManager.getLogger(Evaluator.class);

    private Evaluator() {
    }

    public static ObjectNode evaluate(LanguageModel model, TextTokenizer tok, PreparedDataset data, Settings s) {
        return evaluate(model, tok, data, s, null);
    }

    /**
     * As {@link #evaluate(LanguageModel, TextTokenizer, PreparedDataset, Settings)}, with the decoding measurement
     * run on {@code decodeThreads} intra-op threads (null: {@link DecodeThreads}' rule for the model's size) after a
     * warm-up until steady ({@link DecodeTiming#warmUp}); perplexity and recall keep the caller's thread count, which
     * is restored afterwards.
     */
    public static ObjectNode evaluate(LanguageModel model, TextTokenizer tok, PreparedDataset data, Settings s,
                                      Integer decodeThreads) {
        s.checkFits(model.config());
        ObjectNode out = JSON.createObjectNode();
        // Perplexity on held-out sequences, in dataset order.
        BatchReader val = new BatchReader(data, "val", 1, 0);
        double nll = 0;
        long count = 0;
        List<long[]> filler = new ArrayList<>();
        int n = (int) Math.min(s.sequences(), Math.max(1, data.sequences("val")));
        for (int i = 0; i < n; i++) {
            long[] row = val.next()[0];
            filler.add(row);
            long[] in = java.util.Arrays.copyOf(row, row.length - 1);
            try (NDManager m = NDManager.newBaseManager(model.device())) {
                float[] lp = model.logits(m, new long[][] {in}).logSoftmax(-1).toFloatArray();
                int v = model.config().vocabSize();
                for (int t = 0; t < in.length; t++) {
                    nll -= lp[t * v + (int) row[t + 1]];
                    count++;
                }
            }
        }
        out.put("val_tokens", count);
        out.put("val_loss", nll / count);
        out.put("perplexity", Math.exp(nll / count));
        // Recall: a random letter span, real held-out text as filler, the span again after `distance` tokens.
        long[] fill = filler.stream().flatMapToLong(java.util.Arrays::stream).toArray();
        ObjectNode recall = out.putObject("recall");
        for (int d : s.distances()) {
            recall.put(String.valueOf(d), recall(model, tok, fill, s.spanChars(), d, s.probes()));
        }
        // Decoding, on the decoding thread count, after a warm-up on a state of its own.
        ArrayNode decode = out.putArray("decode");
        try (DecodeThreads.Scope threads = DecodeThreads.use(model.config(), decodeThreads)) {
            DecodeTiming.WarmUp w = DecodeTiming.warmUp(model, WARMUP_LIMIT_NANOS);
            LOG.info("decode warm-up: {} ms, {} steps{}", Math.round(w.millis()), w.steps(),
                    w.steady() ? " (steady)" : " (stopped at its time limit)");
            decode(model, s, fill, decode);
        }
        return out;
    }

    /** Prefill each context, then time single steps; the state's bytes after the context. */
    private static void decode(LanguageModel model, Settings s, long[] fill, ArrayNode decode) {
        for (int c : s.contexts()) {
            long[] ctx = new long[c];
            for (int i = 0; i < c; i++) {
                ctx[i] = fill[i % fill.length];
            }
            try (NDManager m = NDManager.newBaseManager(model.device());
                 LanguageModel.DecodingState st = model.newState()) {
                model.decode(m, st, new long[][] {ctx}).close();
                long bytes = st.bytes(); // the state holding exactly the context
                for (int i = 0; i < WARMUP_STEPS; i++) {
                    model.decode(m, st, new long[][] {{fill[(c + i) % fill.length]}}).close();
                }
                long t0 = System.nanoTime();
                for (int i = 0; i < s.decodeSteps(); i++) {
                    model.decode(m, st, new long[][] {{fill[(c + WARMUP_STEPS + i) % fill.length]}}).close();
                }
                double sec = (System.nanoTime() - t0) / 1e9;
                decode.addObject().put("context", c).put("tokens_per_s", s.decodeSteps() / sec)
                        .put("state_bytes", bytes);
            }
        }
    }

    /**
     * Mean accuracy of {@code probes} repeated-span probes (spans of {@code spanChars} random letters in
     * {@code filler}, repeated {@code distance} tokens later), seeded by distance and probe index.
     */
    public static double recall(LanguageModel model, TextTokenizer tok, long[] filler, int spanChars, int distance,
                                int probes) {
        double acc = 0;
        for (int p = 0; p < probes; p++) {
            RecallProbes.Probe probe = RecallProbes.repeatedSpan(tok, filler, spanChars, distance, 1000L * distance + p);
            acc += RecallProbes.accuracy(probe, argmax(model, probe.tokens()));
        }
        return acc / probes;
    }

    private static int[] argmax(LanguageModel model, long[] tokens) {
        try (NDManager m = NDManager.newBaseManager(model.device())) {
            NDArray logits = model.logits(m, new long[][] {tokens});
            long[] idx = logits.argMax(-1).toLongArray();
            int[] out = new int[idx.length];
            for (int i = 0; i < idx.length; i++) {
                out[i] = (int) idx[i];
            }
            return out;
        }
    }

    /**
     * The side-by-side quality table of several evaluations (name -> result): perplexity and recall at each distance,
     * then, where the results carry them, the percentage of parameters trained, the tokens trained on and the
     * seconds of each training stage in {@code stageColumns} ("-" where a model skipped it), and the description.
     */
    public static String table(java.util.Map<String, ObjectNode> results, List<String> stageColumns) {
        StringBuilder sb = new StringBuilder();
        ObjectNode any = results.values().iterator().next();
        boolean training = results.values().stream().anyMatch(r -> r.has("model_parameters"));
        sb.append(String.format("%-14s %10s", "model", "perplexity"));
        any.path("recall").fieldNames().forEachRemaining(d -> sb.append(String.format(" %10s", "recall@" + d)));
        if (training) {
            sb.append(String.format(" %9s %10s", "trained%", "tokens"));
            for (String st : stageColumns) {
                sb.append(String.format(" %" + width(st) + "s", st + " s"));
            }
        }
        sb.append("  what\n");
        for (var e : results.entrySet()) {
            ObjectNode r = e.getValue();
            sb.append(String.format("%-14s %10.3f", e.getKey(), r.path("perplexity").asDouble()));
            r.path("recall").fields().forEachRemaining(f -> sb.append(String.format(" %10.3f", f.getValue().asDouble())));
            if (training) {
                sb.append(r.has("trained_fraction") ? String.format(" %9.3f", 100 * r.path("trained_fraction").asDouble())
                        : String.format(" %9s", "-"));
                sb.append(r.has("tokens") ? String.format(" %10d", r.path("tokens").asLong()) : String.format(" %10s", "-"));
                for (String st : stageColumns) {
                    JsonNode sec = r.path("stage_seconds").path(st);
                    String cell = sec.isMissingNode() ? "-" : r.path("teacher_cached").asBoolean(false) ? "cached"
                            : String.format("%.1f", sec.asDouble());
                    sb.append(String.format(" %" + width(st) + "s", cell));
                }
            }
            sb.append("  ").append(r.path("description").asText("")).append('\n');
        }
        return sb.toString();
    }

    private static int width(String stage) {
        return Math.max(8, stage.length() + 2);
    }

    /** Decoding speed and state (KV cache or mixer state) bytes at each context length, one row per model. */
    public static String decodeTable(java.util.Map<String, ObjectNode> results) {
        StringBuilder sb = new StringBuilder();
        ObjectNode any = results.values().iterator().next();
        sb.append(String.format("%-14s", "model"));
        for (var d : any.path("decode")) {
            sb.append(String.format(" %13s %13s", "tok/s@" + d.path("context").asInt(), "state@" + d.path("context").asInt()));
        }
        sb.append('\n');
        for (var e : results.entrySet()) {
            sb.append(String.format("%-14s", e.getKey()));
            for (var d : e.getValue().path("decode")) {
                sb.append(String.format(" %13.1f %13s", d.path("tokens_per_s").asDouble(), bytes(d.path("state_bytes").asLong())));
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    /** Bytes in KiB or MiB with one decimal. */
    static String bytes(long b) {
        return b >= 1 << 20 ? String.format("%.1f MiB", b / 1048576.0) : String.format("%.1f KiB", b / 1024.0);
    }
}
