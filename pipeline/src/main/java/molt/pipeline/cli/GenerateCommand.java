package molt.pipeline.cli;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import java.util.stream.LongStream;
import molt.pipeline.eval.DecodeThreads;
import molt.teacher.InputException;
import molt.teacher.model.Generator;
import molt.teacher.model.LanguageModel;
import molt.teacher.model.Sampler;
import molt.teacher.tokenizer.TextTokenizer;
import molt.teacher.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code molt generate}: continue a prompt and report decoding speed. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Continue a prompt; prints the continuation, then tokens/s for prefill and decoding.")
public final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "Model directory (teacher or exported student).")
    Path model;

    @Option(names = "--prompt", description = "Prompt text (needs the model's tokenizer.json).")
    String prompt;

    @Option(names = "--tokens", description = "Prompt as comma-separated token ids instead of text.")
    String tokens;

    @Option(names = "--max-tokens", defaultValue = "64", description = "Tokens to generate. Default: ${DEFAULT-VALUE}.")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy. Default: ${DEFAULT-VALUE}.")
    double temperature;

    @Option(names = "--top-p", defaultValue = "1.0", description = "Nucleus sampling mass. Default: ${DEFAULT-VALUE}.")
    double topP;

    @Option(names = "--seed", defaultValue = "0", description = "Sampling seed. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--threads", description = "Intra-op threads while decoding. Default: the decoding rule for the "
            + "model's size (one thread for narrow models, every core for wide ones; logged).")
    Integer threads;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu, gpu, gpu:N or auto. Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--precision", defaultValue = "f32", description = Models.PRECISION_HELP)
    String precision;

    @Override
    public Integer call() {
        if (maxTokens < 1) {
            throw new InputException("--max-tokens: expected >= 1, found " + maxTokens);
        }
        Sampler sampler;
        try {
            sampler = new Sampler(temperature, topP, seed);
        } catch (IllegalArgumentException e) {
            throw new InputException("--temperature/--top-p: " + e.getMessage());
        }
        if (prompt != null && !Tokenizers.present(model)) {
            throw new InputException(model, "has no tokenizer.json; pass the prompt as token ids with --tokens");
        }
        TextTokenizer tok = prompt != null ? Tokenizers.load(model) : null;
        long[] ids = TokenInput.resolve(tokens, prompt, model, Models.config(model).vocabSize());
        try (LanguageModel m = Models.load(model, device, precision);
             DecodeThreads.Scope t = DecodeThreads.use(m.config(), threads)) {
            long[] stops = LongStream.concat(Arrays.stream(m.config().eosTokenIds()),
                    tok != null && tok.eosId() >= 0 ? LongStream.of(tok.eosId()) : LongStream.empty()).toArray();
            Generator.Result r = Generator.generate(m, ids, maxTokens, sampler, stops);
            if (tok != null) {
                System.out.println(tok.decode(r.tokens(), true));
            } else {
                System.out.println(String.join(",", Arrays.stream(r.tokens()).mapToObj(Long::toString).toList()));
            }
            System.err.printf("device: %s; prefill: %d tokens, %.1f tokens/s; decode: %d tokens, %.1f tokens/s; state: %d bytes%n",
                    m.device(), r.promptTokens(), r.prefillTokensPerSecond(), r.tokens().length, r.decodeTokensPerSecond(),
                    r.stateBytes());
        }
        return 0;
    }
}
