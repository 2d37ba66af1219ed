package molt.teacher.nd;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValueUtils;
import org.apache.logging.log4j.LogManager;

/**
 * A function of tensors written in TorchScript, for ops DJL has no binding for: compiled by libtorch from its source
 * the first time it is called ({@link TorchScriptModule}), then run as one call. Autograd records through it like
 * through any other op (each op's own backward). When the engine cannot load it, {@link #apply} returns null once
 * this is logged, and the caller computes the same thing op by op.
 */
public final class TorchFunction {
    private final String name;
    private final String body;
    private final Object lock = new Object();
    private volatile PtSymbolBlock module;
    private volatile boolean unavailable;

    /**
     * @param name the module's class name (a Python identifier, unique in the process)
     * @param body the class body: a {@code forward(self: __torch__.NAME, ...)} method, indented by two spaces
     * @param enabled false to never load it (a switch the user turned off)
     */
    public TorchFunction(String name, String body, boolean enabled) {
        this.name = name;
        this.body = body;
        this.unavailable = !enabled;
    }

    /**
     * The function of {@code inputs}, its result owned by {@code scope}; null when it is off or could not be loaded.
     * Runs in "training" mode: the result is an ordinary tensor (in-place ops on it are allowed), and while autograd
     * records, the ops' backward joins the graph.
     */
    public NDArray apply(NDManager scope, NDArray... inputs) {
        PtSymbolBlock m = module();
        if (m == null) {
            return null;
        }
        NDArray out = IValueUtils.forward(m, new NDList(inputs), true).singletonOrThrow();
        out.attach(scope);
        return out;
    }

    /** True when the function is in use (not turned off, and loaded). */
    public boolean available() {
        return module() != null;
    }

    private PtSymbolBlock module() {
        PtSymbolBlock m = module;
        if (m != null || unavailable) {
            return m;
        }
        synchronized (lock) {
            if (module == null && !unavailable) {
                try {
                    module = TorchScriptModule.load((PtNDManager) NDManager.newBaseManager(), name, body);
                } catch (RuntimeException e) {
                    unavailable = true;
                    LogManager.getLogger(TorchFunction.class).warn("{} unavailable ({}); it is computed op by op",
                            name, e.toString());
                }
            }
            return module;
        }
    }
}
