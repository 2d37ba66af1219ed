package molt.pipeline.config;

import com.fasterxml.jackson.databind.node.ObjectNode;
import molt.pipeline.train.StageRunner;

/**
 * One stage of a run as its config describes it: a record per stage type, each binding its own keys (a static
 * {@code bind}) and writing them into the resolved config ({@link #toJson}) side by side, and naming the code that
 * runs it ({@link #runner}). {@link StageTypes} binds the {@code name} and {@code type} every stage has and hands
 * the rest to the type's record.
 */
public sealed interface StageSpec permits TrainingSpec, DataPrepareSpec, ExportSpec, EvaluateSpec {
    /** The stage's name: its id in run.json, metrics and logs, and its directory under {@code stages/}. */
    String name();

    /** The stage's type, as configs name it. */
    default String type() {
        return StageTypes.nameOf(this);
    }

    /** Writes the stage's settings, defaults included, after its name and type, in the resolved config's order. */
    void toJson(ObjectNode n);

    /** What runs the stage. */
    StageRunner runner();

    /** Whether the stage trains a student ({@link StudentTrainingSpec}). */
    default boolean trains() {
        return false;
    }

    /** Whether the stage belongs to each student's chain (run once per variant) rather than to the whole run. */
    default boolean perStudent() {
        return trains();
    }

    /** Whether the stage runs after every student's chain, so that it sees every student (evaluate). */
    default boolean runsLast() {
        return false;
    }
}
