package molt.pipeline.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import molt.pipeline.serve.CompletionServer;
import molt.teacher.model.LanguageModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code molt serve}: a teacher or exported student behind OpenAI's completions API (lm-evaluation-harness). */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over HTTP with OpenAI's /v1/completions (lm-evaluation-harness's "
                + "local-completions), /v1/models and /health.")
public final class ServeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "Model directory (teacher or exported student).")
    Path model;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to bind. Default: ${DEFAULT-VALUE} "
            + "(this machine only).")
    String host;

    @Option(names = "--port", defaultValue = "8000", description = "Port (0: any free one). Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--mode", defaultValue = "parallel", description = "How prompts are scored: parallel (one "
            + "forward) or recurrent (token by token, the decoding form). Default: ${DEFAULT-VALUE}.")
    String mode;

    @Option(names = "--queue", defaultValue = "64", description = "Requests that may wait while one runs; more get "
            + "503. Default: ${DEFAULT-VALUE}.")
    int queue;

    @Option(names = "--max-body", defaultValue = "8388608", description = "Largest request body in bytes; larger "
            + "gets 413. Default: ${DEFAULT-VALUE}.")
    long maxBody;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu, gpu, gpu:N or auto. Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--precision", defaultValue = "f32", description = "Frozen weights: f32, f16 or auto. "
            + "Default: ${DEFAULT-VALUE}.")
    String precision;

    @Override
    public Integer call() throws Exception {
        Models.checkMode(mode);
        if (queue < 1) {
            throw new molt.teacher.InputException("--queue: expected at least 1, found " + queue);
        }
        if (port < 0 || port > 65535) {
            throw new molt.teacher.InputException("--port: expected 0 (any free port) to 65535, found " + port);
        }
        if (maxBody < 1) {
            throw new molt.teacher.InputException("--max-body: expected at least 1 byte, found " + maxBody);
        }
        try (LanguageModel m = Models.load(model, device, precision);
             CompletionServer server = CompletionServer.of(m, model, model.getFileName().toString(),
                     mode.equals("recurrent"), queue, maxBody)) {
            int bound = listen(server);
            System.out.println("serving " + model + " on http://" + host + ":" + bound + "/v1 (" + mode + " scoring)");
            new CountDownLatch(1).await(); // until the process is stopped
        }
        return 0;
    }

    /**
     * Starts the server on --host and --port; an address that cannot be bound (in use, not this machine's, not
     * resolvable) is the user's input, reported as such.
     */
    private int listen(CompletionServer server) {
        try {
            return server.start(host, port);
        } catch (RuntimeException e) {
            for (Throwable c = e; c != null; c = c.getCause()) {
                if (c instanceof java.net.SocketException || c instanceof java.nio.channels.UnresolvedAddressException
                        || c instanceof IllegalArgumentException) {
                    throw new molt.teacher.InputException("--host/--port: cannot listen on " + host + ":" + port
                            + " (" + (c.getMessage() != null ? c.getMessage() : c.getClass().getSimpleName()) + ")", e);
                }
            }
            throw e;
        }
    }
}
