package molt.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import molt.teacher.InputException;

/**
 * Documents from a Parquet file or a folder of Parquet shards (read in name order), one row at a time, from a
 * text column or a token-id column.
 */
public final class ParquetDocuments implements DocumentSource {
    private final Path location;
    private final String column;
    private final List<Path> files;
    private int fileIndex = -1;
    private ParquetColumnReader current;
    private long rows;

    public ParquetDocuments(Path location, String column) {
        this.location = location;
        this.column = column;
        if (Files.isDirectory(location)) {
            try (Stream<Path> s = Files.list(location)) {
                files = s.filter(p -> p.getFileName().toString().endsWith(".parquet")).sorted().toList();
            } catch (IOException e) {
                throw new InputException(location, "cannot list: " + e.getMessage());
            }
            if (files.isEmpty()) {
                throw new InputException(location, "holds no .parquet files");
            }
        } else if (Files.isRegularFile(location)) {
            files = List.of(location);
        } else {
            throw new InputException(location, "no such file or directory");
        }
        // Open every shard once up front, so a bad shard or a missing column fails before any work starts.
        for (Path f : files) {
            new ParquetColumnReader(f, column).close();
        }
    }

    @Override
    public Document next() {
        while (true) {
            if (current != null) {
                Document d = current.next();
                if (d != null) {
                    rows++;
                    return d;
                }
                current.close();
                current = null;
            }
            if (++fileIndex >= files.size()) {
                return null;
            }
            current = new ParquetColumnReader(files.get(fileIndex), column);
        }
    }

    @Override
    public String identity() {
        StringBuilder sb = new StringBuilder("parquet:" + location.toAbsolutePath().normalize() + "#" + column);
        for (Path f : files) {
            try {
                sb.append(';').append(f.getFileName()).append(':').append(Files.size(f)).append(':')
                        .append(Files.getLastModifiedTime(f).toMillis());
            } catch (IOException e) {
                throw new InputException(f, "cannot stat: " + e.getMessage());
            }
        }
        return sb.toString();
    }

    @Override
    public void close() {
        if (current != null) {
            current.close();
        }
    }
}
