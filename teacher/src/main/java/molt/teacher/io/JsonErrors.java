package molt.teacher.io;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;

/** One-line descriptions of JSON parse failures, without Jackson's source dump. */
public final class JsonErrors {
    private JsonErrors() {
    }

    public static String describe(Exception e) {
        if (e instanceof JsonProcessingException j) {
            JsonLocation loc = j.getLocation();
            String where = loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
            String msg = j.getOriginalMessage().lines().findFirst().orElse("parse error")
                    .replaceAll("\\s*\\(start marker at \\[Source:.*", "");
            return msg + where;
        }
        String m = e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m.lines().findFirst().orElse(m);
    }
}
