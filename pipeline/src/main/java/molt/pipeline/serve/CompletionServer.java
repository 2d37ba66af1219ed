package molt.pipeline.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import molt.teacher.model.LanguageModel;
import molt.teacher.tokenizer.TextTokenizer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * An OpenAI-compatible HTTP server over one model (Javalin on Jetty): {@code GET /health}, {@code GET /v1/models},
 * {@code POST /v1/completions} and, when the tokenizer has a chat template, {@code POST /v1/chat/completions} (both
 * also as server-sent events with {@code stream: true}). Requests run one at a time on
 * one worker (the model is not thread-safe); up to {@code queue} more wait, and beyond that a request gets 503. A
 * malformed request gets 400 and a body above {@code maxBody} bytes 413, each with a JSON error, and the server
 * goes on serving.
 */
public final class CompletionServer implements AutoCloseable {
    private static final Logger LOG = LogManager.getLogger(CompletionServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Javalin app;
    private final ThreadPoolExecutor worker;
    private final Completions completions;
    private final String modelId;
    private final int vocab;
    private final long maxBody;
    private final ChatTemplate chat;
    private final molt.teacher.tokenizer.TextTokenizer tokenizer;

    /** Serves {@code model} under the id {@code modelId}; call {@link #start}. */
    public CompletionServer(LanguageModel model, TextTokenizer tokenizer, String modelId, boolean recurrent, int queue,
                            long maxBody, ChatTemplate chat) {
        this.completions = new Completions(model, tokenizer, recurrent);
        this.chat = chat;
        this.tokenizer = tokenizer;
        this.modelId = modelId;
        this.vocab = model.config().vocabSize();
        this.maxBody = maxBody;
        this.worker = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS, new ArrayBlockingQueue<>(Math.max(1, queue)),
                r -> new Thread(() -> { // the model runs here: autograd off, as in the thread that loaded it
                    molt.teacher.nd.Autograd.offForThisThread();
                    r.run();
                }, "molt-serve-worker"));
        this.app = Javalin.create(c -> {
            c.showJavalinBanner = false;
            c.http.maxRequestSize = maxBody;
        });
        app.get("/health", ctx -> ctx.json(JSON.createObjectNode().put("status", "ok")));
        app.get("/v1/models", ctx -> {
            ObjectNode list = JSON.createObjectNode().put("object", "list");
            list.putArray("data").addObject().put("id", modelId).put("object", "model").put("owned_by", "molt");
            ctx.contentType("application/json").result(JSON.writeValueAsString(list));
        });
        app.post("/v1/completions", ctx -> completions(ctx, false));
        app.post("/v1/chat/completions", ctx -> completions(ctx, true));
    }

    /**
     * Serves {@code model}, with /v1/chat/completions when the tokenizer in {@code tokenizerDir} has a chat template.
     */
    public static CompletionServer of(LanguageModel model, java.nio.file.Path tokenizerDir, String modelId,
                                      boolean recurrent, int queue, long maxBody) throws IOException {
        return new CompletionServer(model, molt.teacher.tokenizer.Tokenizers.load(tokenizerDir), modelId, recurrent,
                queue, maxBody, ChatTemplate.load(tokenizerDir));
    }

    /** Listens on {@code host:port} (port 0: any free port); returns the port. */
    public int start(String host, int port) {
        app.start(host, port);
        return app.port();
    }

    private void completions(Context ctx, boolean isChat) throws Exception {
        if (isChat && chat == null) {
            error(ctx, 404, "this model's tokenizer has no chat template: use /v1/completions");
            return;
        }
        String len = ctx.header("Content-Length");
        if (len != null && len.matches("\\d+") && Long.parseLong(len) > maxBody) {
            error(ctx, 413, "the request body (" + len + " bytes) exceeds the limit of " + maxBody + " bytes");
            return;
        }
        CompletionRequest r;
        try {
            JsonNode body = JSON.readTree(ctx.bodyAsBytes());
            r = CompletionRequest.parse(isChat ? chatPrompt(body) : body, vocab);
        } catch (IOException e) {
            error(ctx, 400, "the body is not JSON: " + e.getMessage().lines().findFirst().orElse(""));
            return;
        } catch (CompletionRequest.Invalid e) {
            error(ctx, 400, e.getMessage());
            return;
        }
        Future<ObjectNode> f;
        try {
            f = worker.submit(() -> run(r, ctx, isChat));
        } catch (RejectedExecutionException e) {
            error(ctx, 503, "the server is busy: " + worker.getQueue().size() + " requests are waiting; retry later");
            return;
        }
        ObjectNode out;
        try {
            out = f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof CompletionRequest.Invalid inv) {
                error(ctx, 400, inv.getMessage());
            } else if (e.getCause() instanceof IOException) {
                LOG.info("client went away: generation stopped ({})", e.getCause().getMessage());
            } else {
                LOG.error("completion failed", e.getCause());
                error(ctx, 500, "internal error: " + e.getCause());
            }
            return;
        }
        if (out != null) { // nothing sent yet: the whole answer now
            ctx.contentType("application/json").result(JSON.writeValueAsString(out));
        }
    }

    /**
     * A chat request as a completion request: the messages rendered through the chat template and tokenized as
     * they are (the template writes the special tokens), the other fields kept.
     */
    private JsonNode chatPrompt(JsonNode body) {
        if (body == null || !body.isObject() || !body.path("messages").isArray() || body.path("messages").isEmpty()) {
            throw new CompletionRequest.Invalid("messages: required, a non-empty list of {role, content}");
        }
        for (JsonNode m : body.path("messages")) {
            if (!m.path("role").isTextual() || !m.path("content").isTextual()) {
                throw new CompletionRequest.Invalid("messages: expected {role, content} strings, found " + m);
            }
        }
        ObjectNode b = ((ObjectNode) body).deepCopy();
        b.remove("messages");
        b.remove("logprobs"); // chat's log-probabilities have another layout; not offered
        ArrayNode ids = b.putArray("prompt");
        for (long id : tokenizer.encode(chat.render(body.path("messages")), false)) {
            ids.add(id);
        }
        return b;
    }

    /**
     * The whole request, on the worker. Every prompt is checked before anything is sent. Streamed, events go out as
     * text is decoded; otherwise a space (JSON allows it before the value) goes out with each piece of decoded
     * text, so that a client that has gone away makes the write fail and the generation stop; the answer is then
     * written here and null returned. Returns the answer when nothing was sent yet.
     */
    private ObjectNode run(CompletionRequest r, Context ctx, boolean isChat) throws IOException {
        for (Object p : r.prompts()) {
            completions.check(r, p);
        }
        OutputStream sse = null;
        OutputStream[] plain = new OutputStream[1];
        if (r.stream()) {
            ctx.res().setContentType("text/event-stream");
            ctx.res().setHeader("Cache-Control", "no-cache");
            sse = ctx.res().getOutputStream();
        }
        ObjectNode out = JSON.createObjectNode().put("id", (isChat ? "chatcmpl-" : "cmpl-")
                + Long.toHexString(System.nanoTime())).put("object", isChat ? "chat.completion" : "text_completion")
                .put("created", System.currentTimeMillis() / 1000).put("model", modelId);
        ArrayNode choices = out.putArray("choices");
        long promptTokens = 0;
        long completionTokens = 0;
        for (int i = 0; i < r.prompts().size(); i++) {
            final int index = i;
            final OutputStream events = sse;
            Completions.Sink sink = events != null ? delta -> event(events, out, index, delta, null, isChat)
                    : delta -> keepAlive(ctx, plain);
            ObjectNode c = completions.choice(r, r.prompts().get(i), i, sink);
            promptTokens += c.remove("prompt_tokens").asLong();
            completionTokens += c.remove("completion_tokens").asLong();
            if (isChat) {
                c.remove("logprobs");
                c.putObject("message").put("role", "assistant").put("content", c.remove("text").asText());
            }
            choices.add(c);
            if (events != null) {
                event(events, out, index, "", c.path("finish_reason").asText(), isChat);
            }
        }
        out.putObject("usage").put("prompt_tokens", promptTokens).put("completion_tokens", completionTokens)
                .put("total_tokens", promptTokens + completionTokens);
        if (sse != null) {
            sse.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            sse.flush();
            return null;
        }
        if (plain[0] != null) {
            plain[0].write(JSON.writeValueAsBytes(out));
            plain[0].flush();
            return null;
        }
        return out;
    }

    /** One space of a non-streamed answer (starting it as JSON with status 200 the first time); throws once the
     * client is gone. */
    private static void keepAlive(Context ctx, OutputStream[] plain) throws IOException {
        if (plain[0] == null) {
            ctx.res().setContentType("application/json");
            plain[0] = ctx.res().getOutputStream();
        }
        plain[0].write(' ');
        plain[0].flush();
    }

    /** One server-sent event: a chunk of choice {@code index}'s text (and its finish reason at the end). */
    private static void event(OutputStream sse, ObjectNode head, int index, String delta, String finish,
                              boolean isChat) throws IOException {
        ObjectNode e = JSON.createObjectNode().put("id", head.get("id").asText())
                .put("object", isChat ? "chat.completion.chunk" : "text_completion")
                .put("created", head.get("created").asLong()).put("model", head.get("model").asText());
        ObjectNode c = e.putArray("choices").addObject().put("index", index);
        if (isChat) {
            c.putObject("delta").put("content", delta);
        } else {
            c.put("text", delta);
        }
        if (finish == null) {
            c.putNull("finish_reason");
        } else {
            c.put("finish_reason", finish);
        }
        sse.write(("data: " + JSON.writeValueAsString(e) + "\n\n").getBytes(StandardCharsets.UTF_8));
        sse.flush(); // a client that went away makes this throw, which ends the generation
    }

    private static void error(Context ctx, int status, String message) throws IOException {
        ObjectNode e = JSON.createObjectNode();
        e.putObject("error").put("message", message).put("type", status == 503 ? "server_busy"
                : status >= 500 ? "server_error" : "invalid_request_error").put("code", status);
        ctx.status(status).contentType("application/json").result(JSON.writeValueAsString(e));
    }

    @Override
    public void close() {
        app.stop();
        worker.shutdownNow();
    }
}
