package molt.student.lora;

import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import molt.teacher.Projection;

/**
 * LoRA settings (Hu et al. 2021, as LoLCATs' stage 2 uses them): rank r, alpha (the update is scaled by
 * alpha / r), dropout on the adapter's input, and the target projections by short name.
 *
 * @param targets short names of {@link Projection}s: q, k, v, o (attention) and gate, up, down (MLP)
 */
public record LoraConfig(int rank, double alpha, double dropout, List<String> targets) {

    /** The short names a target may take. */
    public static final Set<String> KNOWN_TARGETS = Set.copyOf(Projection.shortNames());

    /** LoLCATs' defaults: rank 8, alpha 16, dropout 0, on q, k, v and o. */
    public static LoraConfig lolcatsDefaults() {
        return new LoraConfig(8, 16, 0, List.of("q", "k", "v", "o"));
    }

    public LoraConfig {
        if (rank <= 0) {
            throw new IllegalArgumentException("lora rank must be > 0, found " + rank);
        }
        if (!(alpha > 0) || Double.isInfinite(alpha)) {
            throw new IllegalArgumentException("lora alpha must be > 0, found " + alpha);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("lora dropout must be in [0, 1), found " + dropout);
        }
        targets = List.copyOf(targets);
        for (String t : targets) {
            if (!KNOWN_TARGETS.contains(t)) {
                throw new IllegalArgumentException("lora target '" + t + "' is not one of " + Projection.shortNames());
            }
        }
        if (targets.size() != Set.copyOf(targets).size()) {
            throw new IllegalArgumentException("lora targets repeat a name: " + targets);
        }
    }

    /** The targets as projections, in the order given. */
    public List<Projection> projections() {
        return targets.stream().map(Projection::of).collect(Collectors.toList());
    }

    /** The factor alpha / r applied to B A. */
    public double scaling() {
        return alpha / rank;
    }
}
