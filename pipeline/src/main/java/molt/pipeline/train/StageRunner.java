package molt.pipeline.train;

import ai.djl.Device;
import java.io.IOException;

/** What runs a stage (molt.pipeline.config.StageSpec#runner names it for each stage type). */
@FunctionalInterface
public interface StageRunner {
    void run(StageContext ctx, Device device) throws IOException;
}
