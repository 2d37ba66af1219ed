package molt.pipeline;

import molt.teacher.InputException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The {@code molt} command line. Exit codes: 0 done, 2 bad input (a one-line message on stderr, the stack
 * trace only with {@code --debug}), 1 a failure of molt itself.
 */
@Command(name = "molt", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Distil a pretrained Llama-family Transformer into a sub-quadratic student.",
        subcommands = {
            CommandLine.HelpCommand.class,
            molt.pipeline.cli.InspectCommand.class,
            molt.pipeline.cli.LogitsCommand.class,
            molt.pipeline.cli.GenerateCommand.class,
            molt.pipeline.cli.RunCommand.class,
            molt.pipeline.cli.StatusCommand.class,
            molt.pipeline.cli.ReportCommand.class,
            molt.pipeline.cli.ServeCommand.class,
            molt.pipeline.cli.ValidateCommand.class,
            molt.pipeline.cli.EvalCommand.class,
            molt.pipeline.cli.DataCommand.class,
            molt.pipeline.cli.BenchCommand.class,
        })
public final class Main implements Runnable {

    @Option(names = "--debug", scope = CommandLine.ScopeType.INHERIT,
            description = "Print stack traces for errors.")
    boolean debug;

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static void main(String[] args) {
        // before the engine allocates; a run switches to TIGHT for large teachers (Runner.resolve)
        molt.teacher.nd.NativeMemory.configure(molt.teacher.nd.NativeMemory.Mode.REUSE);
        System.exit(execute(args));
    }

    /** Runs the command line and returns its exit code (used by tests in-process). */
    public static int execute(String... args) {
        boolean debug = java.util.Arrays.asList(args).contains("--debug");
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((ex, line, parsed) -> {
            String input = inputMessage(ex);
            if (input != null) {
                System.err.println("molt: " + input);
                if (debug) {
                    ex.printStackTrace(System.err);
                }
                return 2;
            }
            String what = String.valueOf(ex).lines().findFirst().orElse(ex.getClass().getName());
            System.err.println("molt: internal error: " + what
                    + (debug ? "" : " (run again with --debug for the stack trace)"));
            if (debug) {
                ex.printStackTrace(System.err);
            }
            return 1;
        });
        cli.setParameterExceptionHandler((ex, a) -> {
            System.err.println("molt: " + ex.getMessage());
            CommandLine.UnmatchedArgumentException.printSuggestions(ex, System.err);
            System.err.println("molt: see '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help'");
            return 2;
        });
        return cli.execute(args);
    }

    /**
     * The one-line message of a user's mistake in the cause chain: an {@link InputException}, or a file-system
     * refusal (no such file, not a directory, no permission, read-only, full disk) naming its path. Null otherwise.
     */
    private static String inputMessage(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof InputException) {
                return c.getMessage().lines().findFirst().orElse("");
            }
        }
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof java.nio.file.FileSystemException f) {
                return molt.teacher.io.AtomicFiles.describe(f);
            }
        }
        return null;
    }

    /** Version from the jar manifest, falling back to the build's resource. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"molt " + BuildInfo.version() + " (" + BuildInfo.commit() + "), DJL "
                    + BuildInfo.djlVersion()};
        }
    }
}
