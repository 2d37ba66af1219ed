package molt.teacher;

import java.nio.file.Path;

/**
 * Bad input from a user: a file, a config or an argument that molt cannot use. The command line prints the
 * one-line message and exits with code 2 (the stack trace only with {@code --debug}); every other exception
 * is a failure of molt itself. Messages say what was expected and what was found.
 */
public class InputException extends RuntimeException {

    public InputException(String message) {
        super(message);
    }

    public InputException(String message, Throwable cause) {
        super(message, cause);
    }

    /** A problem in one file: the message starts with the file's path. */
    public InputException(Path file, String what) {
        super(file + ": " + what);
    }

    public InputException(Path file, String what, Throwable cause) {
        super(file + ": " + what, cause);
    }
}
