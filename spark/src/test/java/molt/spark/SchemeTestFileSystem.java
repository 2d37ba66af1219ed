package molt.spark;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;

/**
 * A Hadoop filesystem of scheme {@code molttest}: the local filesystem under another name, standing in for an object
 * store ({@code molttest:///abs/path} is {@code /abs/path}). Its statuses are plain ones (names, sizes, times), as an
 * object store's are.
 */
public class SchemeTestFileSystem extends RawLocalFileSystem {
    static final String SCHEME = "molttest";

    @Override
    public URI getUri() {
        return URI.create(SCHEME + ":///");
    }

    @Override
    public String getScheme() {
        return SCHEME;
    }

    @Override
    public File pathToFile(Path path) {
        checkPath(path);
        Path abs = path.isAbsolute() ? path : new Path(getWorkingDirectory(), path);
        return new File(abs.toUri().getPath());
    }

    @Override
    public FileStatus getFileStatus(Path f) throws IOException {
        File file = pathToFile(f);
        if (!file.exists()) {
            throw new FileNotFoundException(f.toString());
        }
        return new FileStatus(file.isDirectory() ? 0 : file.length(), file.isDirectory(), 1, 1 << 25,
                file.lastModified(), makeQualified(f));
    }

    @Override
    public FileStatus[] listStatus(Path f) throws IOException {
        File file = pathToFile(f);
        if (!file.isDirectory()) {
            return new FileStatus[] {getFileStatus(f)};
        }
        String[] names = file.list();
        FileStatus[] out = new FileStatus[names.length];
        for (int i = 0; i < names.length; i++) {
            out[i] = getFileStatus(new Path(f, names[i]));
        }
        return out;
    }
}
