package molt.pipeline.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face chat template (the Jinja string under {@code chat_template} in tokenizer_config.json, or the
 * {@code chat_template.jinja} file beside it) rendered with Jinjava, as transformers' apply_chat_template does:
 * {@code messages}, {@code add_generation_prompt}, {@code bos_token}, {@code eos_token} and
 * {@code raise_exception(message)}.
 */
final class ChatTemplate {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The message of the template's raise_exception during this thread's render (Jinjava wraps the exception). */
    private static final ThreadLocal<String> RAISED = new ThreadLocal<>();

    private final String template;
    private final String bos;
    private final String eos;
    private final Jinjava jinja;

    private ChatTemplate(String template, String bos, String eos) {
        this.template = template;
        this.bos = bos;
        this.eos = eos;
        this.jinja = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).build());
        jinja.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class,
                "raise", String.class));
    }

    /** The template of the tokenizer in {@code dir}, or null when it has none. */
    static ChatTemplate load(Path dir) throws IOException {
        Path file = dir.resolve("tokenizer_config.json");
        JsonNode cfg = Files.isRegularFile(file) ? JSON.readTree(file.toFile()) : JSON.createObjectNode();
        String t = null;
        JsonNode c = cfg.get("chat_template");
        if (c != null && c.isTextual()) {
            t = c.asText();
        } else if (c != null && c.isArray()) { // named templates: the default one
            for (JsonNode e : c) {
                if ("default".equals(e.path("name").asText())) {
                    t = e.path("template").asText();
                }
            }
        }
        if (t == null && Files.isRegularFile(dir.resolve("chat_template.jinja"))) {
            t = Files.readString(dir.resolve("chat_template.jinja"));
        }
        return t == null ? null : new ChatTemplate(t, special(cfg.get("bos_token")), special(cfg.get("eos_token")));
    }

    /** A special token as tokenizer_config.json writes it: a string or {"content": ...}. */
    private static String special(JsonNode n) {
        return n == null || n.isNull() ? "" : n.isTextual() ? n.asText() : n.path("content").asText("");
    }

    /** The prompt for {@code messages} ([{role, content}]), ending with the assistant's turn opened. */
    String render(JsonNode messages) {
        List<Map<String, Object>> ms = new ArrayList<>();
        for (JsonNode m : messages) {
            Map<String, Object> one = new LinkedHashMap<>();
            m.fields().forEachRemaining(e -> one.put(e.getKey(), e.getValue().isTextual() ? e.getValue().asText()
                    : e.getValue().toString()));
            ms.add(one);
        }
        Map<String, Object> ctx = new LinkedHashMap<>();
        ctx.put("messages", ms);
        ctx.put("add_generation_prompt", true);
        ctx.put("bos_token", bos);
        ctx.put("eos_token", eos);
        RAISED.remove();
        var result = jinja.renderForResult(template, ctx);
        if (RAISED.get() != null) {
            throw new CompletionRequest.Invalid("the chat template refused the messages: " + RAISED.get());
        }
        if (!result.getErrors().isEmpty()) {
            throw new CompletionRequest.Invalid("the chat template failed: " + result.getErrors().get(0).getMessage());
        }
        return result.getOutput();
    }

    /** raise_exception(message) inside a template. */
    public static String raise(String message) {
        RAISED.set(message);
        throw new CompletionRequest.Invalid(message);
    }
}
