// tools/leakless/report.cpp — `leakless report DIR -o report.html`: one self-contained HTML page
// about a recorded run.
//
// How it works: the heap profiles in DIR (or the files given) are loaded and analysed with
// analysis.hpp (load_snapshots, analyze_leaks). The page holds four parts: the memory over time
// (the whole sampled heap, plus each suspect's live bytes, as one SVG line chart), one growth
// chart per suspect (its live bytes, its Theil–Sen trend line, its verdict and its stack), the
// flame graph of the last profile's live memory (render_flame_svg, inlined as SVG) and the top
// table (the last profile's live bytes by the call site that allocated them, named as the analysis
// names suspects). Everything the charts and the table show is put into the page as one JSON
// object (nlohmann-json, with "</" escaped so it cannot close the <script> element); a small
// hand-written script draws the charts as SVG elements and fills the table when the page loads.
// The page loads nothing from anywhere: CSS, script and SVG are all inline.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis.hpp"
#include "commands.hpp"
#include "flame_graph.hpp"

namespace leakless::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct report_args {
  std::vector<std::string> inputs;
  std::string out;
  std::size_t top = 20;
};

json points(const std::vector<series_point>& series) {
  json out = json::array();
  for (const series_point& p : series) out.push_back({p.seconds, p.bytes});
  return out;
}

// The last profile's live bytes and objects by the call site that allocated them.
json top_table(const pprof::profile& p, std::size_t limit) {
  const std::size_t bytes_index = sample_index(p, "inuse_space");
  const std::optional<std::size_t> objects_index = find_sample_index(p, "inuse_objects");
  struct site {
    std::string function, file;
    std::int64_t line = 0;
    double bytes = 0, objects = 0;
  };
  std::map<std::string, site> sites;
  double total = 0;
  const profile_index index(p);
  for (const pprof::sample& s : p.samples) {
    const auto bytes = static_cast<double>(s.values.at(bytes_index));
    if (bytes <= 0) continue;
    total += bytes;
    const std::vector<frame> stack = index.frames(s);
    if (stack.empty()) continue;
    const frame& f = stack[naming_frame(stack)];
    site& entry = sites[f.function + "\n" + f.file + "\n" + std::to_string(f.line)];
    entry.function = f.function;
    entry.file = f.file;
    entry.line = f.line;
    entry.bytes += bytes;
    if (objects_index) entry.objects += static_cast<double>(s.values.at(*objects_index));
  }
  std::vector<site> sorted;
  for (auto& [key, s] : sites) sorted.push_back(std::move(s));
  std::sort(sorted.begin(), sorted.end(), [](const site& a, const site& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.function < b.function;
  });
  if (sorted.size() > limit) sorted.resize(limit);
  json rows = json::array();
  for (const site& s : sorted) {
    rows.push_back({{"function", s.function},
                    {"file", s.file},
                    {"line", s.line},
                    {"bytes", s.bytes},
                    {"objects", s.objects},
                    {"share", total > 0 ? s.bytes / total : 0}});
  }
  return rows;
}

json report_data(const std::vector<std::string>& inputs, const std::vector<heap_snapshot>& series,
                 const leak_analysis& a, std::size_t top) {
  json suspects = json::array();
  for (const suspect& s : a.suspects) {
    json entry = suspect_json(s);
    entry["inuse"] = points(s.inuse);  // the page's charts take [seconds, bytes] pairs
    suspects.push_back(std::move(entry));
  }
  std::string source;
  for (const std::string& in : inputs) source += (source.empty() ? "" : " ") + in;
  const std::time_t now = std::time(nullptr);
  char generated[32];
  std::strftime(generated, sizeof generated, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return {{"source", source},
          {"generated", generated},
          {"snapshots", a.snapshots},
          {"duration_seconds", a.duration_seconds},
          {"call_sites", a.call_sites},
          {"sample_period", a.sample_period},
          {"total_growth_bytes_per_min", a.total_growth_bytes_per_min},
          {"total", points(a.total_inuse)},
          {"suspects", suspects},
          {"top", top_table(series.back().profile, top)}};
}

// The page; @DATA@, @FLAME@ and @TITLE@ are replaced.
constexpr const char* kPage = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@TITLE@</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1240px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.summary { color: #555; }
.verdict { font-weight: bold; color: #b3261e; }
.ok { font-weight: bold; color: #1e7b34; }
.chart text { font-size: 11px; fill: #444; }
.chart .grid { stroke: #e4e4e4; }
.chart .axis { stroke: #888; }
.chart .series { fill: none; stroke-width: 2; }
.chart .trend { fill: none; stroke: #555; stroke-dasharray: 5 4; }
.suspect { border: 1px solid #e3d3d3; border-radius: 6px; padding: 0.5em 1em; margin: 1em 0; }
.suspect h3 { margin: 0.3em 0; font-family: monospace; }
.stack { font-family: monospace; font-size: 12px; white-space: pre; overflow-x: auto;
         background: #f7f7f7; padding: 0.5em; }
.stack .own { font-weight: bold; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.legend span { margin-right: 1.5em; font-size: 12px; }
.legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle;
            margin-right: 4px; }
</style>
</head>
<body>
<h1>leakless report</h1>
<p class="summary" id="summary"></p>
<h2>Memory over time</h2>
<div id="memory"></div>
<h2>Suspects</h2>
<div id="suspects"></div>
<h2>Flame graph of live memory (last profile)</h2>
<div id="flame">@FLAME@</div>
<h2>Top call sites by live memory (last profile)</h2>
<table id="top"><thead><tr><th>#</th><th>function</th><th>location</th><th>live bytes</th>
<th>share</th><th>objects</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="report-data">@DATA@</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("report-data").textContent);
const colors = ["#3b6fb6", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#2e4057"];
const SVG = "http://www.w3.org/2000/svg";

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Math.abs(n), u = 0;
  while (v >= 1024 && u + 1 < units.length) { v /= 1024; u++; }
  return (n < 0 ? "-" : "") + (u === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[u];
}
function seconds(s) {
  return s >= 120 ? (s / 60).toFixed(1) + " min" : s.toFixed(s < 10 ? 1 : 0) + " s";
}
function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function html(name, attrs, text) {
  const e = document.createElement(name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function median(values) {
  const v = values.slice().sort((a, b) => a - b);
  return v.length === 0 ? 0 : (v[(v.length - 1) >> 1] + v[v.length >> 1]) / 2;
}

// A line chart of series [{name, points: [[seconds, bytes]], color}] and optional dashed trend
// lines [{slope (bytes/s), points}] (each through the median of its points' intercepts).
function chart(series, trends, width, height) {
  const m = {left: 70, right: 20, top: 14, bottom: 30};
  const svg = el("svg", {class: "chart", width: width, height: height,
                         viewBox: "0 0 " + width + " " + height});
  let xmax = 0, ymax = 0;
  for (const s of series) for (const p of s.points) {
    xmax = Math.max(xmax, p[0]); ymax = Math.max(ymax, p[1]);
  }
  if (xmax <= 0) xmax = 1;
  if (ymax <= 0) ymax = 1;
  ymax *= 1.1;
  const x = t => m.left + (width - m.left - m.right) * t / xmax;
  const y = b => height - m.bottom - (height - m.top - m.bottom) * b / ymax;
  for (let i = 0; i <= 4; i++) {
    const b = ymax * i / 4;
    svg.appendChild(el("line", {class: "grid", x1: m.left, x2: width - m.right, y1: y(b), y2: y(b)}));
    svg.appendChild(el("text", {x: m.left - 6, y: y(b) + 4, "text-anchor": "end"}, bytes(b)));
    const t = xmax * i / 4;
    svg.appendChild(el("text", {x: x(t), y: height - m.bottom + 16, "text-anchor": "middle"},
                       seconds(t)));
  }
  svg.appendChild(el("line", {class: "axis", x1: m.left, x2: m.left, y1: m.top,
                              y2: height - m.bottom}));
  svg.appendChild(el("line", {class: "axis", x1: m.left, x2: width - m.right,
                              y1: height - m.bottom, y2: height - m.bottom}));
  for (const t of trends) {
    const b0 = median(t.points.map(p => p[1] - t.slope * p[0]));
    svg.appendChild(el("line", {class: "trend", x1: x(0), y1: y(b0), x2: x(xmax),
                                y2: y(b0 + t.slope * xmax)}));
  }
  for (const s of series) {
    const g = el("g", {class: "series-group"});
    g.appendChild(el("title", {}, s.name));
    g.appendChild(el("polyline", {class: "series", stroke: s.color, "data-name": s.name,
                                  points: s.points.map(p => x(p[0]) + "," + y(p[1])).join(" ")}));
    for (const p of s.points) {
      const dot = el("circle", {cx: x(p[0]), cy: y(p[1]), r: 2.5, fill: s.color});
      dot.appendChild(el("title", {}, s.name + ": " + bytes(p[1]) + " at " + seconds(p[0])));
      g.appendChild(dot);
    }
    svg.appendChild(g);
  }
  return svg;
}
function legend(series) {
  const div = html("div", {class: "legend"});
  for (const s of series) {
    const span = html("span");
    const swatch = html("i");
    swatch.style.background = s.color;
    span.appendChild(swatch);
    span.appendChild(document.createTextNode(s.name));
    div.appendChild(span);
  }
  return div;
}
function where(f) { return f.file ? f.file + ":" + f.line : "(no source location)"; }

const n = data.suspects.length;
document.title = n > 0 ? "leakless: " + n + " suspect" + (n > 1 ? "s" : "") + ", " +
                         data.suspects[0].function
                       : "leakless: no suspect";
document.getElementById("summary").textContent =
  data.snapshots + " heap profiles of " + data.source + " over " + seconds(data.duration_seconds) +
  ", " + data.call_sites + " call sites; the sampled heap grows " +
  bytes(data.total_growth_bytes_per_min) + "/min. Generated " + data.generated + ".";

const memorySeries = [{name: "sampled heap (all live memory)", points: data.total,
                       color: colors[0]}];
data.suspects.forEach((s, i) => memorySeries.push({name: s.function, points: s.inuse,
                                                   color: colors[(i + 1) % colors.length]}));
const memory = document.getElementById("memory");
memory.appendChild(chart(memorySeries, [], 1100, 300));
memory.appendChild(legend(memorySeries));

const suspects = document.getElementById("suspects");
if (n === 0) {
  suspects.appendChild(html("p", {class: "ok"},
                            "No suspect: no call site's live memory keeps growing."));
}
data.suspects.forEach((s, i) => {
  const box = html("div", {class: "suspect"});
  box.appendChild(html("h3", {}, "#" + (i + 1) + " " + s.function + "  " + where(s)));
  box.appendChild(html("p", {class: "verdict"}, s.verdict + " (confidence " +
                       (100 * s.confidence).toFixed(1) + "%); live " + bytes(s.first_bytes) +
                       " \u2192 " + bytes(s.last_bytes)));
  const color = colors[(i + 1) % colors.length];
  box.appendChild(chart([{name: s.function, points: s.inuse, color: color}],
                        [{slope: s.growth_bytes_per_min / 60, points: s.inuse}], 700, 200));
  const stack = html("div", {class: "stack"});
  for (const f of s.stack) {
    const own = f.function === s.function && f.file === s.file && f.line === s.line;
    const line = html("div", own ? {class: "own"} : {},
                      (own ? "> " : "  ") + f.function + "  " + where(f));
    stack.appendChild(line);
  }
  box.appendChild(stack);
  suspects.appendChild(box);
});

const body = document.querySelector("#top tbody");
data.top.forEach((r, i) => {
  const tr = html("tr", {class: "top-row"});
  tr.appendChild(html("td", {class: "num"}, String(i + 1)));
  tr.appendChild(html("td", {}, r.function));
  tr.appendChild(html("td", {}, where(r)));
  tr.appendChild(html("td", {class: "num"}, bytes(r.bytes)));
  tr.appendChild(html("td", {class: "num"}, (100 * r.share).toFixed(1) + "%"));
  tr.appendChild(html("td", {class: "num"}, Math.round(r.objects).toString()));
  body.appendChild(tr);
});
</script>
</body>
</html>
)html";

void replace(std::string& text, const std::string& what, const std::string& with) {
  const std::size_t at = text.find(what);
  if (at != std::string::npos) text.replace(at, what.size(), with);
}

int report(const report_args& a) {
  leak_analysis analysis;
  std::string page = kPage;
  try {
    const std::vector<heap_snapshot> series = load_snapshots(a.inputs);
    analysis = analyze_leaks(series);
    std::string data = report_data(a.inputs, series, analysis, a.top).dump();
    for (std::size_t at = 0; (at = data.find("</", at)) != std::string::npos; at += 3) {
      data.replace(at, 2, "<\\/");  // a JSON string may not close the <script> element
    }
    const pprof::profile& last = series.back().profile;
    flame_options flame;
    flame.title =
        "live memory (inuse_space) of " + fs::path(series.back().source).filename().string();
    replace(page, "@TITLE@", "leakless report");
    replace(page, "@FLAME@", render_flame_svg(last, sample_index(last, "inuse_space"), flame));
    replace(page, "@DATA@", data);
  } catch (const std::exception& e) {
    report_error(e.what());
    return exit_failure;
  }

  const fs::path out = a.out.empty() ? fs::path(a.inputs.front()) / "report.html" : fs::path(a.out);
  std::ofstream file(out, std::ios::binary | std::ios::trunc);
  file << page;
  file.close();
  if (!file) {
    report_error("cannot write " + out.string());
    return exit_failure;
  }
  double peak = 0;
  for (const series_point& p : analysis.total_inuse) peak = std::max(peak, p.bytes);
  const auto& total = analysis.total_inuse;
  std::cerr << "leakless report: wrote " << out.string() << " (" << analysis.snapshots
            << " profiles, " << analysis.suspects.size() << " suspect"
            << (analysis.suspects.size() == 1 ? "" : "s") << "; sampled heap "
            << (total.empty() ? "-" : human_bytes(total.front().bytes)) << " -> "
            << (total.empty() ? "-" : human_bytes(total.back().bytes)) << ", peak "
            << human_bytes(peak) << ")\n";
  return exit_ok;
}

}  // namespace

void add_report_command(CLI::App& app, int& status) {
  auto args = std::make_shared<report_args>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Write one self-contained HTML page: memory over time, suspects, flame graph, top");
  cmd->add_option("inputs", args->inputs,
                  "A directory of heap profiles (as `leakless run` writes them) or profile files")
      ->required();
  cmd->add_option("-o,--output", args->out, "The HTML file to write (default: DIR/report.html)");
  cmd->add_option("--top", args->top, "Rows in the top table")->capture_default_str();
  cmd->callback([args, &status] { status = report(*args); });
}

}  // namespace leakless::cli
