package molt.teacher;

import ai.djl.Device;
import ai.djl.engine.Engine;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Chooses the compute device from a user's setting ({@code auto}, {@code cpu}, {@code gpu} or {@code gpu:N})
 * and logs the choice. Nothing falls back silently: asking for a GPU on an engine that has none is an error,
 * and {@code auto} logs which device it took and why.
 */
public final class Devices {
    private static final Logger LOG = LogManager.getLogger(Devices.class);

    private Devices() {
    }

    /** Parses and resolves a device setting; {@code null} or blank means {@code cpu}. */
    public static Device resolve(String setting) {
        String s = setting == null || setting.isBlank() ? "cpu" : setting.trim().toLowerCase(java.util.Locale.ROOT);
        if (s.equals("cpu")) {
            LOG.info("device: cpu (requested)");
            return Device.cpu();
        }
        if (s.equals("auto")) {
            int gpus = gpuCount();
            if (gpus > 0) {
                LOG.info("device: gpu:0 (auto: engine {} sees {} GPU(s))", engineName(), gpus);
                return Device.gpu(0);
            }
            LOG.info("device: cpu (auto: engine {} sees no GPU; see README 'GPU setup')", engineName());
            return Device.cpu();
        }
        if (s.equals("gpu") || s.startsWith("gpu:")) {
            int index = 0;
            if (s.startsWith("gpu:")) {
                try {
                    index = Integer.parseInt(s.substring(4));
                } catch (NumberFormatException e) {
                    throw new InputException("device: expected auto, cpu, gpu or gpu:N, found '" + setting + "'");
                }
                if (index < 0) {
                    throw new InputException("device: GPU index must be >= 0, found '" + setting + "'");
                }
            }
            int gpus = gpuCount();
            if (index >= gpus) {
                throw new InputException("device: '" + setting + "' requested but the PyTorch engine sees " + gpus
                        + " GPU(s) (a CPU-only libtorch is loaded unless PYTORCH_LIBRARY_PATH/PYTORCH_FLAVOR point to a CUDA build; see README 'GPU setup')");
            }
            LOG.info("device: gpu:{} (requested; engine sees {} GPU(s))", index, gpus);
            return Device.gpu(index);
        }
        throw new InputException("device: expected auto, cpu, gpu or gpu:N, found '" + setting + "'");
    }

    /** True when {@link #resolve} would take a GPU for {@code setting} (without logging anything). */
    public static boolean isGpu(String setting) {
        String s = setting == null || setting.isBlank() ? "cpu" : setting.trim().toLowerCase(java.util.Locale.ROOT);
        return s.startsWith("gpu") || (s.equals("auto") && gpuCount() > 0);
    }

    private static int gpuCount() {
        return Engine.getInstance().getGpuCount();
    }

    private static String engineName() {
        Engine e = Engine.getInstance();
        return e.getEngineName() + " " + e.getVersion();
    }
}
