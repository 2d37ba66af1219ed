package molt.pipeline.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.awt.Rectangle;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import molt.pipeline.run.MetricsLog;
import molt.teacher.InputException;
import molt.teacher.io.AtomicFiles;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.svg.SVGGraphics2D;

/**
 * {@code report.html}: one self-contained page about a run (no script, no network; charts are inline SVG drawn by
 * JFreeChart through JFreeSVG). It shows each training stage's training and validation loss over tokens, attention
 * transfer's per-layer error, the evaluate stage's tables, perplexity and recall per model and decoding speed and
 * state size against context, and the resolved config. It reads whatever the run directory holds, so a run still
 * in progress gets a report of what it has done so far.
 */
public final class RunReport {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int WIDTH = 720;
    private static final int HEIGHT = 360;

    private RunReport() {
    }

    /** Writes {@code runDir/report.html} (atomically) and returns it. */
    public static Path write(Path runDir) throws IOException {
        if (!Files.isRegularFile(runDir.resolve("config.resolved.json"))) {
            throw new InputException(runDir, "is not a molt run directory (no config.resolved.json)");
        }
        System.setProperty("java.awt.headless", "true");
        Path out = runDir.resolve("report.html");
        AtomicFiles.writeString(out, html(runDir));
        return out;
    }

    /** The page. */
    static String html(Path runDir) throws IOException {
        JsonNode config = read(runDir.resolve("config.resolved.json"));
        JsonNode state = read(runDir.resolve("run.json"));
        String name = config.path("config").path("name").asText(runDir.getFileName().toString());
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>molt run ").append(esc(name))
                .append("</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1000px}"
                        + "pre{background:#f4f4f4;padding:1em;overflow-x:auto}table{border-collapse:collapse}"
                        + "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>\n");
        h.append("<h1>molt run ").append(esc(name)).append("</h1>\n<p>").append(esc(runDir.toAbsolutePath()
                .normalize().toString())).append("</p>\n");
        stages(h, state);
        losses(h, MetricsLog.records(runDir.resolve("metrics.jsonl")));
        transfer(h, runDir, state);
        evaluation(h, runDir, state);
        h.append("<h2>Resolved config</h2>\n<pre>").append(esc(JSON.writerWithDefaultPrettyPrinter()
                .writeValueAsString(config))).append("</pre>\n</body></html>\n");
        return h.toString();
    }

    /** The stages' states and seconds (run.json). */
    private static void stages(StringBuilder h, JsonNode state) {
        h.append("<h2>Stages</h2>\n<table><tr><th>stage</th><th>type</th><th>status</th><th>seconds</th></tr>\n");
        state.path("stages").fields().forEachRemaining(e -> h.append("<tr><td>").append(esc(e.getKey()))
                .append("</td><td>").append(esc(e.getValue().path("type").asText())).append("</td><td>")
                .append(esc(e.getValue().path("status").asText())).append("</td><td>")
                .append(String.format("%.1f", e.getValue().path("seconds").asDouble())).append("</td></tr>\n"));
        h.append("</table>\n");
        if (state.path("plans").isObject()) {
            h.append("<p>softmax_layers auto: <code>").append(esc(state.path("plans").toString())).append("</code></p>\n");
        }
    }

    /** One chart per stage (its layer groups included): training loss and validation loss over tokens. */
    private static void losses(StringBuilder h, List<ObjectNode> metrics) {
        Map<String, XYSeriesCollection> byStage = new LinkedHashMap<>();
        for (ObjectNode n : metrics) {
            String id = n.path("stage").asText();
            String stage = molt.pipeline.train.LayerGroupTransfer.stageOf(id);
            XYSeriesCollection c = byStage.computeIfAbsent(stage, k -> new XYSeriesCollection());
            String part = id.equals(stage) ? "" : " " + id.substring(stage.length() + 1);
            add(c, "training" + part, n.path("tokens").asDouble(), n.path("loss").asDouble());
            if (n.path("val_loss").isNumber()) {
                add(c, "validation" + part, n.path("tokens").asDouble(), n.path("val_loss").asDouble());
            }
        }
        if (byStage.isEmpty()) {
            return;
        }
        h.append("<h2>Loss over tokens</h2>\n");
        byStage.forEach((stage, data) -> {
            JFreeChart chart = ChartFactory.createXYLineChart(stage, "tokens", "loss", data, PlotOrientation.VERTICAL,
                    true, false, false);
            h.append(svg(chart));
        });
    }

    private static void add(XYSeriesCollection c, String key, double x, double y) {
        if (!Double.isFinite(y)) {
            return;
        }
        int i = c.getSeriesIndex(key);
        XYSeries s = i >= 0 ? c.getSeries(i) : new XYSeries(key, false, true);
        if (i < 0) {
            c.addSeries(s);
        }
        s.add(x, y);
    }

    /** Attention transfer's final per-layer error (relative MSE when recorded, else MSE), per transfer stage. */
    private static void transfer(StringBuilder h, Path runDir, JsonNode state) throws IOException {
        boolean any = false;
        for (String id : stageIds(state, "attention_transfer")) {
            JsonNode r = read(runDir.resolve("stages").resolve(id).resolve("result.json"));
            if (r.path("per_layer_mse").isEmpty()) {
                continue;
            }
            if (!any) {
                h.append("<h2>Attention transfer: error per layer</h2>\n");
                any = true;
            }
            DefaultCategoryDataset d = new DefaultCategoryDataset();
            boolean relative = r.path("per_layer_mse").get(0).path("relative_mse").isNumber();
            for (JsonNode l : r.path("per_layer_mse")) {
                d.addValue(l.path(relative ? "relative_mse" : "mse").asDouble(), relative ? "relative MSE" : "MSE",
                        "layer " + l.path("layer").asInt());
            }
            h.append(svg(ChartFactory.createBarChart(id, "layer", relative ? "MSE / teacher mean square" : "MSE", d)));
        }
    }

    /** The evaluate stage's tables, then perplexity, recall, decoding speed and state size per model. */
    private static void evaluation(StringBuilder h, Path runDir, JsonNode state) throws IOException {
        for (String id : stageIds(state, "evaluate")) {
            JsonNode r = read(runDir.resolve("stages").resolve(id).resolve("result.json"));
            if (!r.path("table").isTextual()) {
                continue;
            }
            h.append("<h2>Evaluation (").append(esc(id)).append(")</h2>\n<pre>").append(esc(r.path("table").asText()))
                    .append("</pre>\n");
            DefaultCategoryDataset ppl = new DefaultCategoryDataset();
            DefaultCategoryDataset recall = new DefaultCategoryDataset();
            XYSeriesCollection speed = new XYSeriesCollection();
            XYSeriesCollection bytes = new XYSeriesCollection();
            r.fields().forEachRemaining(e -> {
                if (!e.getValue().isObject()) {
                    return;
                }
                String model = e.getKey();
                JsonNode m = e.getValue();
                ppl.addValue(m.path("perplexity").asDouble(), "perplexity", model);
                m.path("recall").fields().forEachRemaining(d -> recall.addValue(d.getValue().asDouble(), model,
                        "distance " + d.getKey()));
                for (JsonNode d : m.path("decode")) {
                    add(speed, model, d.path("context").asDouble(), d.path("tokens_per_s").asDouble());
                    add(bytes, model, d.path("context").asDouble(), d.path("state_bytes").asDouble());
                }
            });
            h.append(svg(ChartFactory.createBarChart("perplexity", "model", "perplexity", ppl)));
            if (recall.getColumnCount() > 0) {
                h.append(svg(ChartFactory.createBarChart("recall", "copy distance", "recall", recall)));
            }
            if (speed.getSeriesCount() > 0) {
                h.append(svg(ChartFactory.createXYLineChart("decoding speed", "context (tokens)", "tokens/s", speed,
                        PlotOrientation.VERTICAL, true, false, false)));
                JFreeChart st = ChartFactory.createXYLineChart("decoding state", "context (tokens)", "state bytes",
                        bytes, PlotOrientation.VERTICAL, true, false, false);
                ((XYPlot) st.getPlot()).setRangeAxis(new LogAxis("state bytes"));
                h.append(svg(st));
            }
        }
    }

    /** The ids (run.json keys) of stages of {@code type}, in run order. */
    private static List<String> stageIds(JsonNode state, String type) {
        List<String> ids = new ArrayList<>();
        state.path("stages").fields().forEachRemaining(e -> {
            if (type.equals(e.getValue().path("type").asText())) {
                ids.add(e.getKey());
            }
        });
        return ids;
    }

    /** A chart as an inline SVG element. */
    private static String svg(JFreeChart chart) {
        SVGGraphics2D g = new SVGGraphics2D(WIDTH, HEIGHT);
        chart.draw(g, new Rectangle(0, 0, WIDTH, HEIGHT));
        return "<div>" + g.getSVGElement() + "</div>\n";
    }

    /** A JSON file, or an empty object when absent or unreadable (a run in progress). */
    private static JsonNode read(Path f) {
        try {
            return Files.isRegularFile(f) ? JSON.readTree(f.toFile()) : JSON.createObjectNode();
        } catch (IOException e) {
            return JSON.createObjectNode();
        }
    }

    /** HTML-escaped text. */
    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
