package molt.teacher.nd;

import ai.djl.ndarray.NDArray;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Products of F32 activations with 16-bit frozen weights in BF16 on CPU: x and the weight are rounded to BF16, the
 * product accumulates in F32 (oneDNN, on AMX tiles where the CPU has them), and the result is widened back to F32.
 * DJL cannot hold a BF16 array (creating one aborts the JVM), so the BF16 arrays live only inside a TorchScript
 * function ({@link TorchFunction}); autograd runs through it, so gradients reaching x pass through BF16 too.
 *
 * <p>Measured on an Intel Xeon with AMX (2 threads, docs/BENCHMARKS.md): 1.6-2.2x the F32 product's rate at the
 * SmolLM2-135M and Llama-3.2-1B projection shapes, with a relative error of 2^-8, BF16's rounding. Where the CPU
 * lacks AMX ({@link #fast}) molt widens 16-bit weights to F32 instead ({@link molt.teacher.model.Frozen#WIDEN}).
 *
 * <p>A weight of up to 2^23 values is rounded to BF16 by way of F32 (exact, then the same rounding to nearest even):
 * the same values as libtorch's direct F16-to-BF16 conversion, whose loop is slower; products at the SmolLM2-135M
 * projection shapes took 7.0 instead of 8.0 ms per layer. Larger weights (Llama-3.2-1B's MLP, 16.8M values) convert
 * directly: their F32 copy no longer fits a cache and cost more than it saved (70 against 47 ms for [1024, 2048] x
 * [2048, 8192]; docs/BENCHMARKS.md).
 *
 * <p>Shapes: x [..., in], wT [in, out] (F16, possibly a transposed view) -> [..., out] F32.
 */
public final class Bf16Products {
    private static final TorchFunction PRODUCT = new TorchFunction("Bf16Product", """
              def forward(self: __torch__.Bf16Product,
                x: Tensor,
                w: Tensor) -> Tensor:
                return self.bf16(x, w)
            """ + bf16Method("Bf16Product"), true);
    /**
     * A decoding step's product in F16 (no conversion of the weight), or, where F16's range does not hold x or the
     * result (a value beyond 65504 became infinite), the BF16 product after all.
     */
    private static final TorchFunction STEP = new TorchFunction("F16StepProduct", """
              def forward(self: __torch__.F16StepProduct,
                x: Tensor,
                w: Tensor) -> Tensor:
                y = torch.matmul(x.to(5), w)
                if bool(torch.isfinite(y).all()):
                  return y.to(6)
                return self.bf16(x, w)
            """ + bf16Method("F16StepProduct"), true);
    private static final boolean FAST = detect();
    private static final boolean F16_FAST = FAST && cpuFlags().contains(" avx512_fp16 ");

    private Bf16Products() {
    }

    /**
     * The BF16 product as a method of TorchScript class {@code name}: a weight of up to 2^23 values is rounded by way
     * of F32, a larger one directly (see above).
     */
    private static String bf16Method(String name) {
        return """
                  def bf16(self: __torch__.%s,
                    x: Tensor,
                    w: Tensor) -> Tensor:
                    if w.numel() <= 8388608:
                      return torch.matmul(x.to(15), w.to(6).to(15)).to(6)
                    return torch.matmul(x.to(15), w.to(15)).to(6)
                """.formatted(name);
    }

    /** x wT in BF16 with an F32 result owned by x's manager; null when the function could not be loaded. */
    public static NDArray product(NDArray x, NDArray wT) {
        return PRODUCT.apply(x.getManager(), x, wT);
    }

    /**
     * True when 16-bit frozen weights on CPU should multiply in BF16: the CPU has AMX's BF16 tiles (Linux's
     * {@code amx_bf16} flag), unless {@code MOLT_BF16_PRODUCTS=0}; {@code MOLT_BF16_PRODUCTS=1} forces it.
     */
    public static boolean fast() {
        return FAST;
    }

    /**
     * x wT for a decoding step (x [B, 1, in], no autograd) in F16, falling back to BF16 where F16 overflows; an F32
     * result owned by x's manager; null when the function could not be loaded.
     */
    public static NDArray stepProduct(NDArray x, NDArray wT) {
        return STEP.apply(x.getManager(), x, wT);
    }

    /**
     * True when BF16 products are in use and the CPU also has AVX-512's F16 arithmetic ({@code avx512_fp16}): a product
     * of a few rows without autograd (a decoding step) then multiplies in F16 with no conversion of the weight.
     */
    public static boolean f16Fast() {
        return F16_FAST;
    }

    /** True when frozen weights held at {@code p} multiply in BF16 on this machine's CPU: 16-bit weights, {@link #fast}. */
    public static boolean usedFor(molt.teacher.Precision p) {
        return p == molt.teacher.Precision.F16 && FAST;
    }

    private static boolean detect() {
        String env = System.getenv("MOLT_BF16_PRODUCTS");
        if ("0".equals(env) || "1".equals(env)) {
            return "1".equals(env);
        }
        return cpuFlags().contains(" amx_bf16 ");
    }

    /** The first CPU's flags from /proc/cpuinfo as " flag flag ... ", or " " where there is no such file. */
    static String cpuFlags() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("flags")) {
                    return " " + line.substring(line.indexOf(':') + 1).trim().toLowerCase(Locale.ROOT) + " ";
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or unreadable: no AMX known
        }
        return " ";
    }
}
