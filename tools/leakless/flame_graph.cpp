// tools/leakless/flame_graph.cpp — see flame_graph.hpp.
//
// How it works: build_flame_tree() drops the frames the profile's drop_frames names with
// profile_view.hpp's prune_dropped_frames() (pprof's own rule), turns each sample into frames with
// analysis.hpp's profile_index (inlined frames expanded; an unsymbolized address is named
// "<module>+0x<offset>") and inserts the path from the root into the tree. render_flame_svg() walks
// the tree depth first and writes one <g> per frame.
#include "flame_graph.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "analysis.hpp"
#include "core/xml_escape.hpp"
#include "profile_view.hpp"

namespace leakless::cli {

namespace {

struct building_node {
  std::int64_t value = 0;
  std::map<std::string, building_node> children;
};

flame_node finish(const std::string& name, const building_node& b) {
  flame_node n{name, b.value, {}};
  for (const auto& [child_name, child] : b.children)
    n.children.push_back(finish(child_name, child));
  return n;
}

std::uint32_t name_hash(const std::string& s) {
  std::uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return h;
}

}  // namespace

std::string format_value(std::int64_t value, const std::string& unit) {
  if (unit == "bytes") return human_bytes(static_cast<double>(value));
  char text[48];
  if (unit == "nanoseconds") {
    const double ms = static_cast<double>(value) / 1e6;
    if (ms >= 1000) {
      std::snprintf(text, sizeof text, "%.2f s", ms / 1000);
    } else {
      std::snprintf(text, sizeof text, "%.1f ms", ms);
    }
    return text;
  }
  std::snprintf(text, sizeof text, "%lld", static_cast<long long>(value));
  return unit.empty() || unit == "count" ? std::string(text) : std::string(text) + " " + unit;
}

flame_node build_flame_tree(const pprof::profile& profile, std::size_t index) {
  pprof::profile p = profile;
  prune_dropped_frames(p);
  const profile_index frames(p);
  building_node root;
  for (const pprof::sample& s : p.samples) {
    if (index >= s.values.size() || s.values[index] == 0) continue;
    const std::vector<frame> stack = frames.frames(s);  // leaf first
    const std::int64_t v = s.values[index];
    building_node* node = &root;
    node->value += v;
    for (auto f = stack.rbegin(); f != stack.rend(); ++f) {
      node = &node->children[f->function];
      node->value += v;
    }
  }
  return finish("all", root);
}

std::string render_flame_svg(const pprof::profile& p, std::size_t index,
                             const flame_options& options) {
  const flame_node tree = build_flame_tree(p, index);
  const pprof::value_type type =
      index < p.sample_types.size() ? p.sample_types[index] : pprof::value_type{"?", ""};

  const std::function<int(const flame_node&)> depth_of = [&](const flame_node& n) {
    int d = 0;
    for (const flame_node& c : n.children) d = std::max(d, depth_of(c));
    return d + 1;
  };
  constexpr int frame_height = 17, pad = 10, header = 34;
  const int depth = depth_of(tree);
  const int width = std::max(options.width, 200);
  const int height = header + depth * frame_height + pad;
  const double scale =
      tree.value > 0 ? static_cast<double>(width - 2 * pad) / static_cast<double>(tree.value) : 0;
  const std::string title = options.title.empty()
                                ? type.type + " — total " + format_value(tree.value, type.unit)
                                : options.title;

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"flame-graph\" width=\"" << width
      << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << " " << height
      << "\" font-family=\"Verdana, sans-serif\" font-size=\"11\">\n"
      << "<style>.frame:hover rect{stroke:#000;stroke-width:0.7}.frame text{pointer-events:none}"
         "</style>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"#fdfaf3\"/>\n"
      << "<text class=\"flame-title\" x=\"" << width / 2 << "\" y=\"22\" font-size=\"15\" "
      << "text-anchor=\"middle\">" << xml_escaped(title) << "</text>\n";
  if (tree.value <= 0) {
    svg << "<text x=\"" << width / 2 << "\" y=\"" << header + 14
        << "\" text-anchor=\"middle\">no samples</text>\n";
  }

  const std::function<void(const flame_node&, double, int)> draw = [&](const flame_node& n,
                                                                       double x, int level) {
    const double w = static_cast<double>(n.value) * scale;
    if (w < 0.1 || n.value <= 0) return;
    const double y = height - pad - (level + 1) * frame_height;
    const std::uint32_t h = name_hash(n.name);
    const int r = 205 + static_cast<int>(h % 50), g = static_cast<int>((h >> 8) % 180) + 50,
              b = static_cast<int>((h >> 16) % 55);
    char share[32];
    std::snprintf(share, sizeof share, "%.2f%%",
                  100.0 * static_cast<double>(n.value) / static_cast<double>(tree.value));
    char geometry[128];
    std::snprintf(geometry, sizeof geometry, "x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\"",
                  x, y, w, frame_height - 1);
    svg << "<g class=\"frame\"><title>" << xml_escaped(n.name) << " — "
        << xml_escaped(format_value(n.value, type.unit)) << " (" << share << ")</title><rect "
        << geometry << " rx=\"2\" fill=\"rgb(" << r << "," << g << "," << b << ")\"/>";
    const auto fits = static_cast<std::size_t>((w - 6) / 6.6);
    if (fits >= 3) {
      std::string label = n.name;
      if (label.size() > fits) label = label.substr(0, fits - 2) + "..";
      char at[64];
      std::snprintf(at, sizeof at, "x=\"%.1f\" y=\"%.1f\"", x + 3, y + frame_height - 5);
      svg << "<text " << at << ">" << xml_escaped(label) << "</text>";
    }
    svg << "</g>\n";
    double child_x = x;
    for (const flame_node& c : n.children) {
      draw(c, child_x, level + 1);
      child_x += static_cast<double>(c.value) * scale;
    }
  };
  draw(tree, pad, 0);
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace leakless::cli
