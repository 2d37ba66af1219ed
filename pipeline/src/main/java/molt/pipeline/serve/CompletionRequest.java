package molt.pipeline.serve;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@code /v1/completions} request as OpenAI's API and lm-evaluation-harness's {@code local-completions} send it:
 * one or more prompts (text, token ids, or a list of either), {@code max_tokens}, {@code temperature}, {@code top_p},
 * {@code stop}, {@code seed}, {@code echo} and {@code logprobs} (how many top log-probabilities per position).
 */
record CompletionRequest(List<Object> prompts, int maxTokens, double temperature, double topP, List<String> stop,
                         long seed, boolean echo, Integer logprobs, boolean stream) {

    /** A request the server refuses with 400: {@code message} says what was expected and what was found. */
    static final class Invalid extends RuntimeException {
        Invalid(String message) {
            super(message);
        }
    }

    /** Parses and checks a request body; a prompt is a String or a long[] of token ids below {@code vocab}. */
    static CompletionRequest parse(JsonNode body, int vocab) {
        if (body == null || !body.isObject()) {
            throw new Invalid("expected a JSON object, found " + (body == null ? "nothing" : body.getNodeType()));
        }
        List<Object> prompts = prompts(body.get("prompt"), vocab);
        int maxTokens = (int) integer(body, "max_tokens", 16, 0, 1 << 20);
        double temperature = number(body, "temperature", 1.0, 0, 100);
        double topP = number(body, "top_p", 1.0, 0, 1);
        if (topP == 0) {
            throw new Invalid("top_p: expected a value in (0, 1], found 0");
        }
        List<String> stop = new ArrayList<>();
        JsonNode s = body.get("stop");
        if (s != null && !s.isNull()) {
            if (s.isTextual()) {
                stop.add(s.asText());
            } else if (s.isArray()) {
                s.forEach(x -> {
                    if (!x.isTextual()) {
                        throw new Invalid("stop: expected strings, found " + x);
                    }
                    stop.add(x.asText());
                });
            } else {
                throw new Invalid("stop: expected a string or a list of strings, found " + s);
            }
        }
        long seed = integer(body, "seed", 0, Long.MIN_VALUE, Long.MAX_VALUE);
        boolean echo = bool(body, "echo");
        Integer logprobs = body.hasNonNull("logprobs") ? (int) integer(body, "logprobs", 0, 0, 20) : null;
        boolean stream = bool(body, "stream");
        return new CompletionRequest(prompts, maxTokens, temperature, topP, stop, seed, echo, logprobs, stream);
    }

    private static List<Object> prompts(JsonNode p, int vocab) {
        if (p == null || p.isNull()) {
            throw new Invalid("prompt: required (text, token ids, or a list of either)");
        }
        List<Object> out = new ArrayList<>();
        if (p.isTextual()) {
            out.add(p.asText());
        } else if (p.isArray() && p.size() > 0 && p.get(0).isNumber()) {
            out.add(ids(p, vocab));
        } else if (p.isArray() && p.size() > 0) {
            for (JsonNode e : p) {
                if (e.isTextual()) {
                    out.add(e.asText());
                } else if (e.isArray()) {
                    out.add(ids(e, vocab));
                } else {
                    throw new Invalid("prompt: expected text or token-id lists, found " + e.getNodeType());
                }
            }
        } else {
            throw new Invalid("prompt: expected text, token ids, or a non-empty list of either, found " + p);
        }
        return out;
    }

    private static long[] ids(JsonNode a, int vocab) {
        if (a.size() == 0) {
            throw new Invalid("prompt: a token-id list must not be empty");
        }
        long[] ids = new long[a.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode x = a.get(i);
            if (!x.canConvertToLong() || !x.isIntegralNumber() || x.asLong() < 0 || x.asLong() >= vocab) {
                throw new Invalid("prompt: expected token ids in [0, " + vocab + "), found " + x);
            }
            ids[i] = x.asLong();
        }
        return ids;
    }

    private static long integer(JsonNode b, String key, long dflt, long min, long max) {
        JsonNode n = b.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong() || n.asLong() < min || n.asLong() > max) {
            throw new Invalid(key + ": expected an integer in [" + min + ", " + max + "], found " + n);
        }
        return n.asLong();
    }

    private static double number(JsonNode b, String key, double dflt, double min, double max) {
        JsonNode n = b.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isNumber() || n.asDouble() < min || n.asDouble() > max) {
            throw new Invalid(key + ": expected a number in [" + min + ", " + max + "], found " + n);
        }
        return n.asDouble();
    }

    private static boolean bool(JsonNode b, String key) {
        JsonNode n = b.get(key);
        if (n == null || n.isNull()) {
            return false;
        }
        if (!n.isBoolean()) {
            throw new Invalid(key + ": expected true or false, found " + n);
        }
        return n.asBoolean();
    }
}
