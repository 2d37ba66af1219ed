package molt.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.UUID;
import java.util.regex.Pattern;
import molt.pipeline.config.ConfigLoader;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import molt.teacher.io.Digests;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.spark.SparkConf;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import scala.Tuple2;

/**
 * A run's read-only inputs on an object store or other Hadoop filesystem: a config whose {@code teacher.path} or
 * {@code data.source} is a URI ({@code s3a://bucket/llama}, {@code gs://...}, {@code abfs://...}, {@code hdfs://...})
 * has it copied, on each machine, to {@code spark.molt.inputs.dir} (default {@value #DEFAULT_DIR}), and the run reads
 * the local copy. The copy's directory is named by the URI's hash, so every machine gives the run the same path (the
 * setting must name the same path on all of them); it is reused while the source's listing (names, sizes and
 * modification times) is unchanged, and written to a temporary name, then renamed, so a copy is complete or absent.
 * The filesystems are Hadoop's, configured by {@code spark.hadoop.*} settings as Spark's own are (S3A needs hadoop-aws
 * on the classpath).
 */
final class InputStaging {
    private static final Logger LOG = LogManager.getLogger(InputStaging.class);
    /** Spark setting: where staged inputs go on each machine. */
    static final String DIR_SETTING = "spark.molt.inputs.dir";
    static final String DEFAULT_DIR = "/tmp/molt-inputs";
    private static final String MANIFEST = ".molt-staged";
    private static final Pattern URI_FORM = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]*://.*");
    /** The config keys that name read-only inputs. */
    private static final List<String> INPUT_KEYS = List.of("teacher.path", "data.source");

    private InputStaging() {
    }

    /**
     * {@code sets} plus overrides that point each input of the config named by a URI at its local copy, staged here
     * first (with {@code conf}'s Hadoop settings); {@code sets} itself when no input is a URI. Only the driver reads
     * the data source (it prepares the data): {@code withData} false points at its copy's path without making one.
     */
    static List<String> stagedSets(Path configFile, List<String> sets, SparkConf conf, boolean withData)
            throws IOException {
        ObjectNode tree = ConfigLoader.tree(configFile, sets);
        List<String> out = new ArrayList<>(sets);
        Configuration hadoop = null;
        for (String key : INPUT_KEYS) {
            JsonNode v = tree.path(key.substring(0, key.indexOf('.'))).path(key.substring(key.indexOf('.') + 1));
            if (!v.isTextual() || !URI_FORM.matcher(v.asText()).matches() || v.asText().startsWith("file:")) {
                continue;
            }
            if (hadoop == null) {
                hadoop = hadoopConf(conf);
            }
            URI uri = URI.create(v.asText());
            Path root = Path.of(conf.get(DIR_SETTING, DEFAULT_DIR));
            Path local = withData || !key.equals("data.source") ? stage(uri, hadoop, root) : localPath(uri, root);
            out.add(key + "=" + local);
        }
        return out;
    }

    /** Hadoop's settings as Spark passes them: {@code spark.hadoop.X=V} sets X. */
    static Configuration hadoopConf(SparkConf conf) {
        Configuration c = new Configuration();
        for (Tuple2<String, String> kv : conf.getAll()) {
            if (kv._1().startsWith("spark.hadoop.")) {
                c.set(kv._1().substring("spark.hadoop.".length()), kv._2());
            }
        }
        return c;
    }

    /** The local copy of the file or directory at {@code uri} under {@code root}: reused if current, else made. */
    static Path stage(URI uri, Configuration hadoop, Path root) throws IOException {
        org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(uri);
        FileSystem fs = src.getFileSystem(hadoop);
        if (!fs.exists(src)) {
            throw new InputException("input " + uri + " does not exist");
        }
        FileStatus top = fs.getFileStatus(src);
        TreeMap<String, FileStatus> files = new TreeMap<>();
        if (top.isDirectory()) {
            RemoteIterator<LocatedFileStatus> it = fs.listFiles(src, true);
            String base = top.getPath().toUri().getPath();
            while (it.hasNext()) {
                LocatedFileStatus f = it.next();
                files.put(f.getPath().toUri().getPath().substring(base.length() + 1), f);
            }
        } else {
            files.put("", top);
        }
        StringBuilder manifest = new StringBuilder(uri.toString()).append('\n');
        files.forEach((rel, f) -> manifest.append(rel).append('\t').append(f.getLen()).append('\t')
                .append(f.getModificationTime()).append('\n'));
        Path local = localPath(uri, root);
        Path dir = local.getParent();
        String name = local.getFileName().toString();
        if (current(dir, manifest.toString())) {
            return local;
        }
        Files.createDirectories(root);
        Path tmp = root.resolve(dir.getFileName() + ".tmp-" + UUID.randomUUID());
        long bytes = 0;
        try {
            for (var e : files.entrySet()) {
                Path to = e.getKey().isEmpty() ? tmp.resolve(name) : tmp.resolve(name).resolve(e.getKey());
                Files.createDirectories(to.getParent());
                try (InputStream in = fs.open(e.getValue().getPath());
                        OutputStream o = Files.newOutputStream(to, StandardOpenOption.CREATE_NEW)) {
                    bytes += in.transferTo(o);
                }
                sync(to);
            }
            Files.writeString(tmp.resolve(MANIFEST), manifest, StandardCharsets.UTF_8);
            sync(tmp.resolve(MANIFEST));
            AtomicFiles.deleteTree(dir); // a stale copy, if any: the source changed since
            try {
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | AtomicMoveNotSupportedException raced) {
                if (!current(dir, manifest.toString())) {
                    throw raced;
                }
            }
        } finally {
            AtomicFiles.deleteTree(tmp);
        }
        LOG.info("staged {} ({} files, {} bytes) at {}", uri, files.size(), bytes, local);
        return local;
    }

    /** Where {@code uri}'s copy lives under {@code root}: a directory named by the URI's hash, then its name. */
    static Path localPath(URI uri, Path root) {
        String name = new org.apache.hadoop.fs.Path(uri).getName();
        return root.resolve(Digests.hex(uri.toString()).substring(0, 16)).resolve(name.isEmpty() ? "input" : name);
    }

    private static boolean current(Path dir, String manifest) throws IOException {
        Path m = dir.resolve(MANIFEST);
        return Files.isRegularFile(m) && Files.readString(m, StandardCharsets.UTF_8).equals(manifest);
    }

    private static void sync(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
    }
}
