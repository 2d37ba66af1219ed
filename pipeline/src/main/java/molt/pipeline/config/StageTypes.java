package molt.pipeline.config;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.BiFunction;

/** The stage types configs can name: for each, its name, its spec record and that record's binder. */
final class StageTypes {
    private record Type(String name, Class<? extends StageSpec> spec, BiFunction<String, Binder, StageSpec> bind) {
    }

    private static final List<Type> TYPES = List.of(
            new Type(DataPrepareSpec.TYPE, DataPrepareSpec.class, DataPrepareSpec::bind),
            new Type(TeacherPretrainSpec.TYPE, TeacherPretrainSpec.class, TeacherPretrainSpec::bind),
            new Type(AttentionTransferSpec.TYPE, AttentionTransferSpec.class, AttentionTransferSpec::bind),
            new Type(LoraFinetuneSpec.TYPE, LoraFinetuneSpec.class, LoraFinetuneSpec::bind),
            new Type(ExportSpec.TYPE, ExportSpec.class, ExportSpec::bind),
            new Type(EvaluateSpec.TYPE, EvaluateSpec.class, EvaluateSpec::bind));

    private static final Set<String> NAMES = names();

    private StageTypes() {
    }

    private static Set<String> names() {
        Set<String> names = new LinkedHashSet<>();
        TYPES.forEach(t -> names.add(t.name()));
        return java.util.Collections.unmodifiableSet(names);
    }

    /** One stage: its name and type, then the keys of its type; keys the type does not read are rejected. */
    static StageSpec bind(Binder s) {
        String name = s.requiredStr("name");
        String type = s.choice("type", null, NAMES);
        if (type == null) {
            throw s.error("type", "is required (one of " + NAMES + ")");
        }
        StageSpec spec = TYPES.stream().filter(t -> t.name().equals(type)).findFirst().orElseThrow().bind()
                .apply(name, s);
        s.finish();
        return spec;
    }

    /** The name configs give the type of {@code spec}. */
    static String nameOf(StageSpec spec) {
        return TYPES.stream().filter(t -> t.spec() == spec.getClass()).findFirst().orElseThrow().name();
    }
}
