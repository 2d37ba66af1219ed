package molt.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import molt.teacher.InputException;

/**
 * Documents from a Parquet file or a folder of Parquet shards (read in name order), one row at a time, from a
 * text column, a token-id column, or a prompt and a response column (instruction data, read in lockstep).
 */
public final class ParquetDocuments implements DocumentSource {
    private final Path location;
    private final String column;
    private final String responseColumn;
    private final List<Path> files;
    private int fileIndex = -1;
    private ParquetColumnReader current;
    private ParquetColumnReader currentResponse;
    private long rows;

    public ParquetDocuments(Path location, String column) {
        this(location, column, null);
    }

    /** With {@code responseColumn} non-null, {@code column} holds prompts and documents are prompt/response pairs. */
    public ParquetDocuments(Path location, String column, String responseColumn) {
        this.location = location;
        this.column = column;
        this.responseColumn = responseColumn;
        if (Files.isDirectory(location)) {
            refusePrepared(location);
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
            try (ParquetColumnReader r = new ParquetColumnReader(f, column)) {
                if (responseColumn != null) {
                    textOnly(f, r, column);
                    try (ParquetColumnReader s = new ParquetColumnReader(f, responseColumn)) {
                        textOnly(f, s, responseColumn);
                    }
                }
            }
        }
    }

    /**
     * A folder molt prepared (complete or not) holds packed sequences, not documents: reading it as a source would
     * re-pack rows that overlap by a token, and read top-k caches as documents.
     */
    private static void refusePrepared(Path dir) {
        if (PreparedDataset.isPrepared(dir)) {
            throw new InputException(dir, "is a dataset molt prepared (it has " + PreparedDataset.MANIFEST
                    + "), not a source of documents; prepare from the source it was made from (named in its "
                    + PreparedDataset.MANIFEST + "), or use it where a prepared dataset is expected");
        }
        if (OutputDirectory.hasMarker(dir)) {
            throw new InputException(dir, "is an interrupted or incomplete preparation by molt (it has "
                    + OutputDirectory.MARKER + " but no " + PreparedDataset.MANIFEST + "), not a source of documents; "
                    + "finish it with 'molt data prepare' and this directory as --out, or delete it");
        }
    }

    private static void textOnly(Path f, ParquetColumnReader r, String col) {
        if (r.kind() != ParquetColumnReader.Kind.TEXT) {
            throw new InputException(f, "column '" + col + "' must hold text for prompt/response data");
        }
    }

    @Override
    public Document next() {
        while (true) {
            if (current != null) {
                Document d = current.next();
                if (d != null) {
                    rows++;
                    if (responseColumn == null) {
                        return d;
                    }
                    Document r = currentResponse.next();
                    return Document.ofPair(d.text(), r.text());
                }
                current.close();
                current = null;
                if (currentResponse != null) {
                    currentResponse.close();
                    currentResponse = null;
                }
            }
            if (++fileIndex >= files.size()) {
                return null;
            }
            current = new ParquetColumnReader(files.get(fileIndex), column);
            if (responseColumn != null) {
                currentResponse = new ParquetColumnReader(files.get(fileIndex), responseColumn);
            }
        }
    }

    @Override
    public Path location() {
        return location;
    }

    @Override
    public boolean pairs() {
        return responseColumn != null;
    }

    @Override
    public String identity() {
        StringBuilder sb = new StringBuilder("parquet:" + location.toAbsolutePath().normalize() + "#" + column
                + (responseColumn == null ? "" : "+" + responseColumn));
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
        if (currentResponse != null) {
            currentResponse.close();
        }
    }
}
