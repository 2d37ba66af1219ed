package molt.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.jar.JarFile;
import molt.pipeline.config.ConfigLoader;
import molt.pipeline.run.Runner;
import molt.pipeline.run.StopSignal;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The packaged target/molt-spark.jar as spark-submit runs it: Spark's SparkSubmit in a JVM of its own, with Spark's
 * classes first on the classpath and the jar loaded after them. The Spark side carries the Parquet that Spark 4.2.0
 * ships (1.17.0, whose writer stamps its own version into every file) besides Spark's Jackson, so the run's files are
 * byte-identical to molt's one-process files only if the jar's relocated Parquet and Jackson are the ones used.
 */
class MoltSparkSubmitIT {
    @TempDir
    Path tmp;

    @Test
    void theJarCarriesMoltWithItsParquetAndJacksonRelocatedAndNoSpark() throws Exception {
        try (JarFile jar = new JarFile(jar().toFile())) {
            List<String> names = jar.stream().map(e -> e.getName()).toList();
            for (String want : List.of("molt/spark/MoltSpark.class", "molt/pipeline/run/Runner.class",
                    "molt/shaded/com/fasterxml/jackson/databind/ObjectMapper.class",
                    "molt/shaded/org/yaml/snakeyaml/Yaml.class",
                    "molt/shaded/org/apache/parquet/hadoop/ParquetWriter.class", "ai/djl/engine/Engine.class")) {
                assertTrue(names.contains(want), "molt-spark.jar lacks " + want);
            }
            for (String prefix : List.of("com/fasterxml/jackson/", "org/yaml/snakeyaml/", "org/apache/parquet/",
                    "shaded/parquet/", "org/apache/spark/", "scala/", "org/apache/hadoop/", "org/apache/logging/log4j/",
                    "org/slf4j/")) {
                assertFalse(names.stream().anyMatch(n -> n.startsWith(prefix)),
                        "molt-spark.jar holds unrelocated or Spark-provided classes under " + prefix);
            }
            assertEquals("molt.spark.MoltSpark", jar.getManifest().getMainAttributes().getValue("Main-Class"));
        }
    }

    @Test
    void sparkSubmitRunsTheJarToTheOneProcessBytes() throws Exception {
        Path config = SparkTestRuns.config(tmp);
        Path oneProcess = tmp.resolve("one-process");
        Runner.run(Runner.resolve(ConfigLoader.load(config, List.of("output_dir=" + oneProcess))), StopSignal.manual());

        Result r = submit("run", config.toString());
        assertEquals(0, r.exit(), r.output());
        Path run = tmp.resolve("run");
        assertTrue(Files.isRegularFile(run.resolve("report.json")), r.output());
        Map<String, byte[]> want = SparkTestRuns.outputs(oneProcess);
        assertTrue(want.keySet().stream().anyMatch(k -> k.contains("topk-")), "top-k targets: " + want.keySet());
        SparkTestRuns.assertSameBytes(want, SparkTestRuns.outputs(run));
        String log = Files.readString(run.resolve("molt.log"));
        assertTrue(log.contains("transfer/group-1: attempt 0"), "executor lines reach molt.log");
    }

    @Test
    void aMissingConfigIsOneLineAndExitCodeTwoThroughSparkSubmit() throws Exception {
        Path missing = tmp.resolve("nowhere.yaml");
        Result r = submit("run", missing.toString());
        assertEquals(2, r.exit(), r.output());
        List<String> errors = r.output().lines().filter(l -> l.startsWith("error: ")).toList();
        assertEquals(1, errors.size(), r.output());
        assertTrue(errors.get(0).contains(missing.toString()), errors.get(0));
        assertFalse(r.output().contains("\tat "), "no stack trace: " + r.output());
    }

    private record Result(int exit, String output) {
    }

    /** {@code spark-submit --master local[2,2] --class molt.spark.MoltSpark molt-spark.jar ARGS}. */
    private Result submit(String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx3g");
        cmd.addAll(Arrays.asList(System.getProperty("molt.spark.javaOpens").trim().split("\\s+")));
        cmd.addAll(List.of("-cp", sparkSideClasspath(), "org.apache.spark.deploy.SparkSubmit", "--master", "local[2,2]",
                "--conf", "spark.ui.enabled=false", "--class", "molt.spark.MoltSpark", jar().toString()));
        cmd.addAll(List.of(args));
        Path out = tmp.resolve("spark-submit.out");
        Process p = new ProcessBuilder(cmd).directory(tmp.toFile()).redirectErrorStream(true)
                .redirectOutput(out.toFile()).start();
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError("spark-submit ran over 5 minutes: " + Files.readString(out));
        }
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
    }

    private static Path jar() {
        Path jar = Path.of(System.getProperty("molt.spark.jar", "target/molt-spark.jar"));
        assertTrue(Files.isRegularFile(jar), jar + " is not built (mvn package)");
        return jar;
    }

    /**
     * Spark's side of the classpath: this test's, without molt (its classes and jars, which come only from
     * molt-spark.jar) and without molt's Parquet, plus the Parquet that Spark 4.2.0 ships.
     */
    private static String sparkSideClasspath() throws Exception {
        List<String> out = new ArrayList<>();
        try (Stream<Path> jars = Files.list(Path.of(System.getProperty("molt.spark.sideParquet")))) {
            jars.filter(j -> j.toString().endsWith(".jar")).sorted().forEach(j -> out.add(j.toString()));
        }
        assertEquals(6, out.size(), "Spark's Parquet jars: " + out);
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            Path e = Path.of(entry);
            String name = e.getFileName().toString();
            boolean molt = Files.isDirectory(e) || name.startsWith("molt-") || entry.contains("/dev/molt/");
            if (!molt && !name.startsWith("parquet-")) {
                out.add(entry);
            }
        }
        return String.join(File.pathSeparator, out);
    }
}
