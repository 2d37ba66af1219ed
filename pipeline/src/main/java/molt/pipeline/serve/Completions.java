package molt.pipeline.serve;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.Sampler;
import molt.teacher.tokenizer.TextTokenizer;

/**
 * What {@code /v1/completions} computes for one prompt, teacher or student alike: log-probabilities of the prompt's
 * tokens (with {@code echo} and {@code logprobs}: each token's given the ones before it, the first none, plus the
 * top {@code logprobs} alternatives per position) and a continuation of {@code max_tokens} decoded with the model's
 * fixed-size state (greedy at temperature 0, else seeded nucleus sampling), cut at a stop string or EOS. Scoring uses
 * the model's parallel form or, in {@code recurrent} mode, its decoding steps: the same numbers {@code molt logits}
 * writes in that mode. Not thread-safe: the server runs one request at a time.
 */
final class Completions {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Receives each piece of generated text as it is decoded (streaming); may throw when the client is gone. */
    interface Sink {
        void text(String delta) throws IOException;
    }

    private final LanguageModel model;
    private final TextTokenizer tokenizer;
    private final boolean recurrent;

    Completions(LanguageModel model, TextTokenizer tokenizer, boolean recurrent) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.recurrent = recurrent;
    }

    /** A prompt's token ids: given, or the text encoded with the tokenizer's special tokens. */
    long[] ids(Object prompt) {
        return prompt instanceof long[] ids ? ids : tokenizer.encode((String) prompt, true);
    }

    /** Refuses a prompt whose tokens plus max_tokens exceed the model's context; returns its ids. */
    long[] check(CompletionRequest r, Object prompt) {
        long[] ids = ids(prompt);
        int context = model.config().maxPositionEmbeddings();
        if (ids.length + r.maxTokens() > context) {
            throw new CompletionRequest.Invalid("the prompt (" + ids.length + " tokens) plus max_tokens ("
                    + r.maxTokens() + ") exceeds the model's context of " + context + " tokens");
        }
        return ids;
    }

    /** The choice for prompt {@code index}: text, log-probabilities and finish reason (OpenAI's layout). */
    ObjectNode choice(CompletionRequest r, Object prompt, int index, Sink sink) throws IOException {
        long[] ids = check(r, prompt);
        boolean scores = r.echo() && r.logprobs() != null;
        List<Long> tokens = new ArrayList<>();
        List<Double> tokenLogprobs = new ArrayList<>();
        List<ObjectNode> tops = new ArrayList<>();
        String finish = "length";
        int completion = 0;
        StringBuilder generated = new StringBuilder();
        try (NDManager m = NDManager.newBaseManager(model.device());
             LanguageModel.DecodingState state = model.newState()) {
            float[] last;
            if (recurrent) {
                last = null;
                for (int i = 0; i < ids.length; i++) {
                    float[] row = row(model.decode(m, state, new long[][] {{ids[i]}}));
                    if (scores) {
                        score(ids, i, last, r.logprobs(), tokens, tokenLogprobs, tops);
                    }
                    last = row;
                }
            } else {
                if (scores) {
                    float[] all;
                    try (NDArray logits = model.logits(m, new long[][] {ids})) { // [1, T, V]
                        all = logits.toFloatArray();
                    }
                    int v = all.length / ids.length;
                    for (int i = 0; i < ids.length; i++) {
                        float[] before = i == 0 ? null : java.util.Arrays.copyOfRange(all, (i - 1) * v, i * v);
                        score(ids, i, before, r.logprobs(), tokens, tokenLogprobs, tops);
                    }
                }
                last = r.maxTokens() > 0 ? lastRow(model.decode(m, state, new long[][] {ids})) : null;
            }
            Sampler sampler = r.temperature() == 0 ? Sampler.greedy() : new Sampler(r.temperature(), r.topP(), r.seed());
            List<Long> out = new ArrayList<>();
            for (int n = 0; n < r.maxTokens(); n++) {
                int next = sampler.next(last);
                if (next == tokenizer.eosId()) {
                    finish = "stop";
                    break;
                }
                out.add((long) next);
                completion++;
                if (r.logprobs() != null) {
                    double lse = logSumExp(last);
                    tokens.add((long) next);
                    tokenLogprobs.add(last[next] - lse);
                    tops.add(top(last, lse, r.logprobs()));
                }
                String text = tokenizer.decode(toArray(out), true);
                String stopAt = firstStop(text, r.stop());
                String shown = stopAt == null ? text : text.substring(0, text.indexOf(stopAt));
                if (sink != null && shown.length() > generated.length()) {
                    sink.text(shown.substring(generated.length()));
                }
                generated.setLength(0);
                generated.append(shown);
                if (stopAt != null) {
                    finish = "stop";
                    break;
                }
                if (n + 1 < r.maxTokens()) {
                    last = row(model.decode(m, state, new long[][] {{next}}));
                }
            }
        }
        String text = (r.echo() ? (prompt instanceof String s ? s : tokenizer.decode(ids, false)) : "") + generated;
        ObjectNode c = JSON.createObjectNode().put("index", index).put("text", text).put("finish_reason", finish);
        if (r.logprobs() != null) {
            c.set("logprobs", logprobs(tokens, tokenLogprobs, tops));
        } else {
            c.putNull("logprobs");
        }
        c.put("prompt_tokens", ids.length).put("completion_tokens", completion);
        return c;
    }

    /** Position {@code i} of the prompt: its token, its log-probability given {@code before} (null for i = 0). */
    private void score(long[] ids, int i, float[] before, int k, List<Long> tokens, List<Double> lps,
                       List<ObjectNode> tops) {
        if (i >= ids.length) {
            return;
        }
        tokens.add(ids[i]);
        if (before == null) {
            lps.add(null);
            tops.add(null);
            return;
        }
        double lse = logSumExp(before);
        lps.add(before[(int) ids[i]] - lse);
        tops.add(top(before, lse, k));
    }

    /** The {@code k} most likely tokens of a position as {token text: log-probability}, most likely first. */
    private ObjectNode top(float[] row, double lse, int k) {
        ObjectNode t = JSON.createObjectNode();
        boolean[] taken = new boolean[row.length];
        for (int j = 0; j < Math.min(k, row.length); j++) {
            int best = -1;
            for (int v = 0; v < row.length; v++) {
                if (!taken[v] && (best < 0 || row[v] > row[best])) {
                    best = v;
                }
            }
            taken[best] = true;
            t.put(tokenText(best), row[best] - lse);
        }
        return t;
    }

    private String tokenText(long id) {
        return tokenizer.decode(new long[] {id}, false);
    }

    /** OpenAI's logprobs object: tokens, token_logprobs, top_logprobs and text_offset. */
    private ObjectNode logprobs(List<Long> tokens, List<Double> lps, List<ObjectNode> tops) {
        ObjectNode l = JSON.createObjectNode();
        ArrayNode ts = l.putArray("tokens");
        ArrayNode ls = l.putArray("token_logprobs");
        ArrayNode tp = l.putArray("top_logprobs");
        ArrayNode off = l.putArray("text_offset");
        int offset = 0;
        for (int i = 0; i < tokens.size(); i++) {
            String s = tokenText(tokens.get(i));
            ts.add(s);
            if (lps.get(i) == null) {
                ls.addNull();
            } else {
                ls.add(lps.get(i));
            }
            if (tops.get(i) == null) {
                tp.addNull();
            } else {
                tp.add(tops.get(i));
            }
            off.add(offset);
            offset += s.length();
        }
        return l;
    }

    private static String firstStop(String text, List<String> stops) {
        String first = null;
        int at = Integer.MAX_VALUE;
        for (String s : stops) {
            int i = s.isEmpty() ? -1 : text.indexOf(s);
            if (i >= 0 && i < at) {
                at = i;
                first = s;
            }
        }
        return first;
    }

    /** log sum exp of a row, in double. */
    static double logSumExp(float[] row) {
        double max = Double.NEGATIVE_INFINITY;
        for (float x : row) {
            max = Math.max(max, x);
        }
        double sum = 0;
        for (float x : row) {
            sum += Math.exp(x - max);
        }
        return max + Math.log(sum);
    }

    private static long[] toArray(List<Long> xs) {
        long[] a = new long[xs.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = xs.get(i);
        }
        return a;
    }

    /** A decoding step's logits [1, 1, V] as its row. */
    private static float[] row(NDArray logits) {
        try (logits) {
            return logits.toFloatArray();
        }
    }

    /** The last position's row of logits [1, T, V]. */
    private static float[] lastRow(NDArray logits) {
        try (logits) {
            long t = logits.getShape().get(1);
            try (NDArray r = logits.get("0, " + (t - 1))) {
                return r.toFloatArray();
            }
        }
    }
}
