package molt.pipeline.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import molt.pipeline.cli.CliTestSupport;
import molt.pipeline.run.PipelineTestSupport;
import molt.student.StudentCheckpoint;
import molt.teacher.io.WeightsFile;
import molt.teacher.model.LanguageModel;
import molt.teacher.tokenizer.Tokenizers;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * molt serve through a real HTTP client, with the request bodies lm-evaluation-harness's local-completions model
 * builds, transcribed from lm_eval/models/openai_completions.py (LocalCompletionsAPI._create_payload) at commit
 * 4e7e0d47f33bc71070c1d38394bafbb52b117163: loglikelihood and loglikelihood_rolling send {model, prompt (token
 * lists), temperature 0, max_tokens 1, logprobs 1, seed 1234, echo true} and read token_logprobs[ctxlen:-1] and
 * top_logprobs (parse_logprobs); generate_until sends {prompt, model, max_tokens, temperature 0, stop, seed} and
 * reads each choice's text. The log-probabilities must match molt logits for the same tokens in the same mode
 * (parallel and recurrent) within 1e-5.
 */
class CompletionServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static final long[] TOKENS = {84, 104, 101, 32, 99, 111, 109, 109, 105, 116, 116, 101, 101, 32, 100};

    @TempDir
    static Path dir;
    static Path student;

    @BeforeAll
    static void exportAStudent() throws Exception {
        Path teacher = PipelineTestSupport.teacher(dir);
        Path cfg = PipelineTestSupport.config(dir, teacher, PipelineTestSupport.corpus(dir), "");
        CliTestSupport.Run r = CliTestSupport.run("run", cfg.toString());
        assertEquals(0, r.exit(), r.err());
        student = dir.resolve("run/stages/export/student");
    }

    private static JsonNode post(int port, String body, int status) throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                + "/v1/completions")).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(status, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    /** log-softmax of molt logits' rows for {@code TOKENS} in {@code mode}: lp[i][v] of token v after i + 1 tokens. */
    private static double[][] reference(String mode) throws Exception {
        Path out = dir.resolve("logits-" + mode + ".safetensors");
        StringBuilder ids = new StringBuilder();
        for (long t : TOKENS) {
            ids.append(ids.length() == 0 ? "" : ",").append(t);
        }
        assertEquals(0, CliTestSupport.run("logits", "--model", student.toString(), "--tokens", ids.toString(), "--out",
                out.toString(), "--mode", mode).exit());
        float[] logits = WeightsFile.read(out).get("logits");
        int v = logits.length / TOKENS.length;
        double[][] lp = new double[TOKENS.length][v];
        for (int i = 0; i < TOKENS.length; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) {
                max = Math.max(max, logits[i * v + j]);
            }
            double sum = 0;
            for (int j = 0; j < v; j++) {
                sum += Math.exp(logits[i * v + j] - max);
            }
            for (int j = 0; j < v; j++) {
                lp[i][j] = logits[i * v + j] - max - Math.log(sum);
            }
        }
        return lp;
    }

    @Test
    void loglikelihoodRequestsMatchMoltLogitsInBothModes() throws Exception {
        for (String mode : List.of("parallel", "recurrent")) {
            double[][] lp = reference(mode);
            try (LanguageModel m = StudentCheckpoint.load(student, Device.cpu());
                 CompletionServer s = new CompletionServer(m, Tokenizers.load(student), "student",
                         mode.equals("recurrent"), 4, 1 << 20, null)) {
                int port = s.start("127.0.0.1", 0);
                String ids = JSON.writeValueAsString(TOKENS);
                // loglikelihood / loglikelihood_rolling: one request per batch of token lists
                JsonNode r = post(port, "{\"model\": \"student\", \"prompt\": [" + ids + "], \"temperature\": 0, "
                        + "\"max_tokens\": 1, \"logprobs\": 1, \"seed\": 1234, \"echo\": true}", 200);
                JsonNode lps = r.path("choices").get(0).path("logprobs");
                JsonNode tl = lps.path("token_logprobs");
                assertEquals(TOKENS.length + 1, tl.size(), r.toString()); // the prompt, then the one generated token
                assertTrue(tl.get(0).isNull());
                for (int i = 1; i < TOKENS.length; i++) {
                    assertEquals(lp[i - 1][(int) TOKENS[i]], tl.get(i).asDouble(), 1e-5, mode + " position " + i);
                    double best = Double.NEGATIVE_INFINITY;
                    for (double x : lp[i - 1]) {
                        best = Math.max(best, x);
                    }
                    JsonNode top = lps.path("top_logprobs").get(i);
                    assertEquals(1, top.size());
                    assertEquals(best, top.elements().next().asDouble(), 1e-5, mode + " top at " + i);
                }
                // the greedy continuation token's log-probability, after the whole prompt
                double best = Double.NEGATIVE_INFINITY;
                for (double x : lp[TOKENS.length - 1]) {
                    best = Math.max(best, x);
                }
                assertEquals(best, tl.get(TOKENS.length).asDouble(), 1e-5, mode + " generated");
            }
        }
    }

    @Test
    void generateUntilStopsAtAStopStringAndRepeatsWithASeed() throws Exception {
        try (LanguageModel m = StudentCheckpoint.load(student, Device.cpu());
             CompletionServer s = new CompletionServer(m, Tokenizers.load(student), "student", false, 4, 1 << 20, null)) {
            int port = s.start("127.0.0.1", 0);
            String ids = JSON.writeValueAsString(TOKENS);
            JsonNode greedy = post(port, "{\"prompt\": [" + ids + "], \"model\": \"student\", \"max_tokens\": 12, "
                    + "\"temperature\": 0, \"stop\": [\"\\n\\n\"], \"seed\": 1234}", 200);
            String text = greedy.path("choices").get(0).path("text").asText();
            assertTrue(greedy.path("usage").path("completion_tokens").asInt() <= 12);
            if (text.length() > 2) { // a stop string taken from the greedy text cuts it there
                String stop = text.substring(1, 3);
                JsonNode cut = post(port, "{\"prompt\": [" + ids + "], \"max_tokens\": 12, \"temperature\": 0, "
                        + "\"stop\": [" + JSON.writeValueAsString(stop) + "]}", 200);
                assertEquals(text.substring(0, text.indexOf(stop)), cut.path("choices").get(0).path("text").asText());
                assertEquals("stop", cut.path("choices").get(0).path("finish_reason").asText());
            }
            String sampled = "{\"prompt\": \"The committee\", \"max_tokens\": 10, \"temperature\": 0.9, \"top_p\": 0.9, "
                    + "\"seed\": 7}";
            assertEquals(post(port, sampled, 200).path("choices").get(0).path("text"),
                    post(port, sampled, 200).path("choices").get(0).path("text"));
        }
    }

    @Test
    void chatCompletionsRenderTheTokenizersChatTemplate() throws Exception {
        Path t = java.nio.file.Files.createDirectories(dir.resolve("chat"));
        java.nio.file.Files.writeString(t.resolve("tokenizer_config.json"), JSON.writeValueAsString(JSON.createObjectNode()
                .put("bos_token", "[").put("eos_token", "]").put("chat_template",
                        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'tool' %}"
                        + "{{ raise_exception('no tools') }}{% endif %}<{{ m['role'] }}>{{ m['content'] }}\n"
                        + "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")));
        ChatTemplate template = ChatTemplate.load(t);
        JsonNode messages = JSON.readTree("[{\"role\": \"system\", \"content\": \"Be brief.\"},"
                + "{\"role\": \"user\", \"content\": \"The committee\"}]");
        assertEquals("[<system>Be brief.\n<user>The committee\n<assistant>", template.render(messages));
        try (LanguageModel m = StudentCheckpoint.load(student, Device.cpu());
             CompletionServer s = new CompletionServer(m, Tokenizers.load(student), "student", false, 4, 1 << 20,
                     template)) {
            int port = s.start("127.0.0.1", 0);
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                    + "/v1/chat/completions")).POST(HttpRequest.BodyPublishers.ofString("{\"messages\": " + messages
                    + ", \"max_tokens\": 6, \"temperature\": 0}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            JsonNode chat = JSON.readTree(r.body());
            assertEquals("chat.completion", chat.path("object").asText());
            assertEquals("assistant", chat.path("choices").get(0).path("message").path("role").asText());
            long[] ids = Tokenizers.load(student).encode(template.render(messages), false);
            JsonNode plain = post(port, "{\"prompt\": [" + JSON.writeValueAsString(ids) + "], \"max_tokens\": 6, "
                    + "\"temperature\": 0}", 200);
            assertEquals(plain.path("choices").get(0).path("text").asText(),
                    chat.path("choices").get(0).path("message").path("content").asText());
            HttpResponse<String> refused = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                    + "/v1/chat/completions")).POST(HttpRequest.BodyPublishers.ofString(
                    "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(400, refused.statusCode(), refused.body());
            assertTrue(refused.body().contains("no tools"), refused.body());
        }
        try (LanguageModel m = StudentCheckpoint.load(student, Device.cpu());
             CompletionServer s = new CompletionServer(m, Tokenizers.load(student), "student", false, 4, 1 << 20,
                     null)) {
            int port = s.start("127.0.0.1", 0);
            assertEquals(404, HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                    + "/v1/chat/completions")).POST(HttpRequest.BodyPublishers.ofString("{}")).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode());
        }
    }

    @Test
    void aClientThatGoesAwayStopsItsGeneration() throws Exception {
        try (LanguageModel m = StudentCheckpoint.load(student, Device.cpu());
             CompletionServer s = new CompletionServer(m, Tokenizers.load(student), "student", false, 4, 1 << 20,
                     null)) {
            int port = s.start("127.0.0.1", 0);
            String shortOne = "{\"prompt\": \"The\", \"max_tokens\": 20, \"temperature\": 0}";
            long t0 = System.nanoTime();
            post(port, shortOne, 200);
            double perToken = (System.nanoTime() - t0) / 1e9 / 20;
            int longTokens = 4000;
            for (boolean stream : new boolean[] {false, true}) {
                String body = "{\"prompt\": \"The\", \"max_tokens\": " + longTokens + ", \"temperature\": 0, "
                        + "\"stream\": " + stream + "}";
                try (java.net.Socket client = new java.net.Socket("127.0.0.1", port)) { // gives up after 500 ms
                    client.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            + "Content-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body)
                            .getBytes(java.nio.charset.StandardCharsets.UTF_8));
                    client.getOutputStream().flush();
                    Thread.sleep(500);
                }
                long t1 = System.nanoTime();
                post(port, shortOne, 200); // waits only until the abandoned generation notices
                double waited = (System.nanoTime() - t1) / 1e9;
                assertTrue(waited < perToken * longTokens / 3, "stream " + stream + ": waited " + waited
                        + " s behind an abandoned generation of " + longTokens + " tokens at " + perToken + " s each");
            }
        }
    }

    @Test
    void badRequestsGetJsonErrorsAndTheServerGoesOn() throws Exception {
        try (LanguageModel m = StudentCheckpoint.load(student, Device.cpu());
             CompletionServer s = new CompletionServer(m, Tokenizers.load(student), "student", false, 1, 4096, null)) {
            int port = s.start("127.0.0.1", 0);
            assertTrue(post(port, "{not json", 400).path("error").path("message").asText().contains("not JSON"));
            assertTrue(post(port, "{\"prompt\": [[999999]]}", 400).path("error").path("message").asText()
                    .contains("token ids"));
            assertTrue(post(port, "{\"prompt\": \"x\", \"max_tokens\": 100000}", 400).path("error").path("message")
                    .asText().contains("exceeds the model's context"));
            post(port, "{\"prompt\": \"" + "x".repeat(5000) + "\"}", 413);
            assertEquals("ok", JSON.readTree(HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                    + "/health")).build(), HttpResponse.BodyHandlers.ofString()).body()).path("status").asText());
            // one running, one waiting (queue 1): the others are turned away with 503
            List<CompletableFuture<HttpResponse<String>>> burst = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                burst.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                        + "/v1/completions")).POST(HttpRequest.BodyPublishers.ofString(
                        "{\"prompt\": \"The\", \"max_tokens\": 300, \"temperature\": 0}")).build(),
                        HttpResponse.BodyHandlers.ofString()));
            }
            Map<Integer, Integer> codes = new java.util.TreeMap<>();
            for (var f : burst) {
                codes.merge(f.get().statusCode(), 1, Integer::sum);
            }
            assertTrue(codes.getOrDefault(503, 0) >= 1 && codes.getOrDefault(200, 0) >= 2, codes.toString());
            post(port, "{\"prompt\": \"The\", \"max_tokens\": 2}", 200);
        }
    }
}
