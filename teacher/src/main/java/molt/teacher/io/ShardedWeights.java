package molt.teacher.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import molt.teacher.InputException;

/**
 * Weights split over several safetensors files, as Hugging Face stores large models:
 * {@code model.safetensors.index.json} maps every tensor name ({@code weight_map}) to the shard that holds it.
 * Each shard is opened once; the index and the shards must agree exactly.
 */
public final class ShardedWeights implements WeightSource {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path index;
    private final Map<String, SafetensorsFile> byName;
    private final List<SafetensorsFile> shards;

    private ShardedWeights(Path index, Map<String, SafetensorsFile> byName, List<SafetensorsFile> shards) {
        this.index = index;
        this.byName = byName;
        this.shards = shards;
    }

    public static ShardedWeights open(Path indexFile) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(indexFile));
        } catch (NoSuchFileException e) {
            throw new InputException(indexFile, "missing");
        } catch (IOException e) {
            throw new InputException(indexFile, "not valid JSON: " + JsonErrors.describe(e));
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new InputException(indexFile, "expected a non-empty \"weight_map\" object of tensor name -> shard file");
        }
        Map<String, String> weightMap = new TreeMap<>();
        map.fields().forEachRemaining(f -> {
            if (!f.getValue().isTextual()) {
                throw new InputException(indexFile, "weight_map." + f.getKey() + ": expected a file name, found " + f.getValue());
            }
            weightMap.put(f.getKey(), f.getValue().asText());
        });
        Path dir = indexFile.toAbsolutePath().getParent();
        Map<String, SafetensorsFile> files = new LinkedHashMap<>();
        try {
            for (String shard : new TreeSet<>(weightMap.values())) {
                Path p = dir.resolve(shard).normalize();
                if (!p.startsWith(dir) || shard.contains("/") || shard.contains("\\")) {
                    throw new InputException(indexFile, "shard '" + shard + "' must be a file name in " + dir);
                }
                if (!Files.isRegularFile(p)) {
                    throw new InputException(indexFile, "names shard " + shard + ", which is missing");
                }
                files.put(shard, SafetensorsFile.open(p));
            }
            Map<String, SafetensorsFile> byName = new TreeMap<>();
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                SafetensorsFile f = files.get(e.getValue());
                if (!f.names().contains(e.getKey())) {
                    throw new InputException(indexFile, "maps " + e.getKey() + " to " + e.getValue()
                            + ", which has no such tensor");
                }
                byName.put(e.getKey(), f);
            }
            for (Map.Entry<String, SafetensorsFile> e : files.entrySet()) {
                for (String n : e.getValue().names()) {
                    if (!weightMap.containsKey(n)) {
                        throw new InputException(indexFile, "shard " + e.getKey() + " holds " + n
                                + ", which the index does not list");
                    }
                }
            }
            return new ShardedWeights(indexFile, byName, new ArrayList<>(files.values()));
        } catch (RuntimeException e) {
            files.values().forEach(SafetensorsFile::close);
            throw e;
        }
    }

    @Override
    public Path origin() {
        return index;
    }

    @Override
    public Set<String> names() {
        return Collections.unmodifiableSet(byName.keySet());
    }

    private SafetensorsFile shard(String name) {
        SafetensorsFile f = byName.get(name);
        if (f == null) {
            throw new InputException(index, "no tensor named " + name);
        }
        return f;
    }

    @Override
    public TensorInfo info(String name) {
        return shard(name).info(name);
    }

    @Override
    public float[] readFloats(String name) {
        return shard(name).readFloats(name);
    }

    @Override
    public void readHalf(String name, long offset, short[] into, HalfConversion conversion) {
        shard(name).readHalf(name, offset, into, conversion);
    }

    /** The shard files, in name order. */
    public List<Path> files() {
        return shards.stream().map(SafetensorsFile::origin).toList();
    }

    @Override
    public void close() {
        shards.forEach(SafetensorsFile::close);
    }
}
