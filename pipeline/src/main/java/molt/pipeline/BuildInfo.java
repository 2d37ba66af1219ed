package molt.pipeline;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** molt's version and commit and DJL's version, as recorded at build time in {@code molt-build.properties}. */
public final class BuildInfo {
    private static final Properties PROPS = load();

    private BuildInfo() {
    }

    private static Properties load() {
        Properties p = new Properties();
        try (InputStream in = BuildInfo.class.getResourceAsStream("/molt-build.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            // Left empty: the getters report "unknown".
        }
        return p;
    }

    public static String version() {
        return PROPS.getProperty("molt.version", "unknown");
    }

    public static String commit() {
        String c = PROPS.getProperty("molt.commit", "");
        return c.isBlank() || c.startsWith("${") ? "unknown" : c;
    }

    public static String djlVersion() {
        return PROPS.getProperty("djl.version", "unknown");
    }
}
