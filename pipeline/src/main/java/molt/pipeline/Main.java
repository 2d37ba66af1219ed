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
        System.exit(execute(args));
    }

    /** Runs the command line and returns its exit code (used by tests in-process). */
    public static int execute(String... args) {
        boolean debug = java.util.Arrays.asList(args).contains("--debug");
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((ex, line, parsed) -> {
            Throwable input = inputCause(ex);
            if (input != null) {
                System.err.println("molt: " + input.getMessage());
                if (debug) {
                    ex.printStackTrace(System.err);
                }
                return 2;
            }
            System.err.println("molt: internal error: " + ex);
            if (debug) {
                ex.printStackTrace(System.err);
            } else {
                System.err.println("molt: run again with --debug for the stack trace");
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

    private static Throwable inputCause(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof InputException) {
                return c;
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
