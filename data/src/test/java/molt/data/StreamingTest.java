package molt.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Types;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A dataset ten times larger than the reading JVM's heap streams through with flat memory. */
class StreamingTest {

    /** Reads every document of a source and prints the document count and total characters. */
    public static final class Count {
        public static void main(String[] args) {
            long docs = 0;
            long chars = 0;
            try (DocumentSource s = Sources.open(args[0], "text")) {
                Document d;
                while ((d = s.next()) != null) {
                    docs++;
                    chars += d.text().length();
                }
            }
            System.out.println(docs + " " + chars);
        }
    }

    @Test
    void aDatasetTenTimesTheHeapStreams(@TempDir Path dir) throws Exception {
        MessageType schema = Types.buildMessage().optional(PrimitiveType.PrimitiveTypeName.BINARY)
                .as(LogicalTypeAnnotation.stringType()).named("text").named("schema");
        SimpleGroupFactory f = new SimpleGroupFactory(schema);
        Path file = dir.resolve("big.parquet");
        String para = "The Parliament resumed its session and debated the report at length, item by item. ".repeat(40);
        long docs = 0;
        long chars = 0;
        // About 400 MB of text (uncompressed pages), in 4 MB row groups as Hugging Face exports use small ones.
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(file)).withType(schema)
                .withCompressionCodec(CompressionCodecName.UNCOMPRESSED).withRowGroupSize(4L << 20)
                .withDictionaryEncoding(false).build()) {
            while (chars < 400L << 20) {
                String doc = docs + " " + para;
                w.write(f.newGroup().append("text", doc));
                docs++;
                chars += doc.length();
            }
        }
        assertTrue(Files.size(file) > 10L * (32L << 20), "the file is over ten times the 32 MB heap");
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx32m",
                "-cp", System.getProperty("java.class.path"), Count.class.getName(), file.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).trim();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        String last = out.lines().reduce((a, b) -> b).orElse("");
        assertEquals(docs + " " + chars, last, out);
    }
}
