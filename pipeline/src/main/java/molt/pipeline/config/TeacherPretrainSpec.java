package molt.pipeline.config;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Set;
import molt.pipeline.train.StageRunner;
import molt.pipeline.train.TeacherPretrainStage;

/**
 * A {@code teacher_pretrain} stage: trains a small teacher from scratch (it comes first, after data preparation:
 * every other stage uses its teacher). Its resolved keys are part of the teacher cache's key.
 */
public record TeacherPretrainSpec(String name, TrainingSettings training, Pretrain pretrain) implements TrainingSpec {
    public static final String TYPE = "teacher_pretrain";

    static TeacherPretrainSpec bind(String name, Binder s) {
        TrainingSettings training = TrainingSettings.bind(s, 3e-3, 0.01, "constant");
        return new TeacherPretrainSpec(name, training, Pretrain.bind(s));
    }

    @Override
    public void toJson(ObjectNode n) {
        pretrain.toJson(n);
        training.toJson(n);
    }

    @Override
    public StageRunner runner() {
        return TeacherPretrainStage::runOrReuse;
    }

    /**
     * The architecture the stage trains (byte vocabulary, untied head), and copy augmentation (see
     * molt.data.SpanCopy): the fraction of training sequences that repeat a span of their own text, the fraction of
     * those whose span is scrambled (drawn from the row or from letters), and the span lengths in tokens.
     */
    public record Pretrain(int hidden, int layers, int heads, int kvHeads, int intermediate, double ropeTheta,
                           double copyFraction, double copyScrambled, String copyScrambleFrom, int copyMinSpan,
                           int copyMaxSpan, Repeats repeats) {

        static Pretrain bind(Binder s) {
            int hidden = (int) s.integer("hidden", 128, 8, 1 << 16);
            int heads = (int) s.integer("heads", 4, 1, 1024);
            if (hidden % heads != 0 || (hidden / heads) % 2 != 0) {
                throw s.error("heads", "hidden (" + hidden + ") must split into heads of even size, found " + heads);
            }
            int kv = (int) s.integer("kv_heads", heads, 1, heads);
            if (heads % kv != 0) {
                throw s.error("kv_heads", "must divide heads (" + heads + "), found " + kv);
            }
            int layers = (int) s.integer("layers", 4, 1, 1024);
            int intermediate = (int) s.integer("intermediate", hidden * 8 / 3, 1, 1 << 20);
            double ropeTheta = s.number("rope_theta", 10000, 1, 1e9, true);
            double copyFraction = s.number("copy_fraction", 0, 0, 1, true);
            double copyScrambled = s.number("copy_scrambled", 0, 0, 1, true);
            String scrambleFrom = s.choice("copy_scramble_from", "row", Set.of("row", "letters"));
            int copyMin = (int) s.integer("copy_min_span", 8, 1, 1 << 20);
            int copyMax = (int) s.integer("copy_max_span", 32, 1, 1 << 20);
            if (copyMax < copyMin) {
                throw s.error("copy_max_span", "must be >= copy_min_span (" + copyMin + "), found " + copyMax);
            }
            return new Pretrain(hidden, layers, heads, kv, intermediate, ropeTheta, copyFraction, copyScrambled,
                    scrambleFrom, copyMin, copyMax, Repeats.bind(s));
        }

        void toJson(ObjectNode n) {
            n.put("hidden", hidden).put("layers", layers).put("heads", heads).put("kv_heads", kvHeads)
                    .put("intermediate", intermediate).put("rope_theta", ropeTheta)
                    .put("copy_fraction", copyFraction).put("copy_scrambled", copyScrambled)
                    .put("copy_min_span", copyMinSpan).put("copy_max_span", copyMaxSpan);
            if (!copyScrambleFrom.equals("row")) { // absent at the default: older cached teachers keep their key
                n.put("copy_scramble_from", copyScrambleFrom);
            }
            repeats.toJson(n);
        }
    }

    /**
     * The induction curriculum (see molt.data.RepeatedBlocks), off unless asked for: {@code warmupSteps} optimizer
     * steps of {@code sequences} sequences of {@code seqLen} tokens, each a random block of
     * {@code minPeriod..maxPeriod} lowercase letters repeated, before any corpus step; then, when {@code every > 0},
     * one more such step after every {@code every} corpus steps, at the run's sequence length (as many sequences as
     * hold a warmup step's tokens, periods up to half the length).
     */
    public record Repeats(int warmupSteps, int seqLen, int sequences, int minPeriod, int maxPeriod, int every) {
        public boolean enabled() {
            return warmupSteps > 0 || every > 0;
        }

        static Repeats bind(Binder s) {
            int warmup = (int) s.integer("repeat_warmup_steps", 0, 0, Integer.MAX_VALUE);
            int seqLen = (int) s.integer("repeat_seq_len", 96, 2, 1 << 20);
            int sequences = (int) s.integer("repeat_sequences", 8, 1, 1 << 16);
            int minPeriod = (int) s.integer("repeat_min_period", 6, 1, 1 << 20);
            int maxPeriod = (int) s.integer("repeat_max_period", 48, 1, 1 << 20);
            int every = (int) s.integer("repeat_every", 0, 0, Integer.MAX_VALUE);
            if (maxPeriod < minPeriod) {
                throw s.error("repeat_max_period", "must be >= repeat_min_period (" + minPeriod + "), found "
                        + maxPeriod);
            }
            if (minPeriod >= seqLen) {
                throw s.error("repeat_min_period", "must be shorter than repeat_seq_len (" + seqLen + ") for a block "
                        + "to repeat, found " + minPeriod);
            }
            return new Repeats(warmup, seqLen, sequences, minPeriod, maxPeriod, every);
        }

        void toJson(ObjectNode n) {
            if (enabled()) { // absent when off, so teachers cached before the curriculum existed keep their key
                n.put("repeat_warmup_steps", warmupSteps).put("repeat_seq_len", seqLen)
                        .put("repeat_sequences", sequences).put("repeat_min_period", minPeriod)
                        .put("repeat_max_period", maxPeriod).put("repeat_every", every);
            }
        }
    }
}
