// tools/leakless/flame_graph.hpp — draws a pprof profile as a flame graph in SVG.
//
// How it works: every sample's stack is turned into function names from the root down (a
// location's inlined frames included, outermost first); frames the profile's drop_frames regex
// matches (the allocation plumbing of the C++ library) are removed with everything they call, as
// pprof does, so the leaf is the code that asked for the memory. Equal paths are merged into a
// tree whose node values are the sums of the chosen sample type. The tree is laid out as Brendan
// Gregg's flame graphs are: the root ("all") at the bottom, each child above its parent, widths
// proportional to value, children left to right by name. Every frame is a <g class="frame"> with a
// <title> (name, value, share of the total) that a browser shows on hover, a <rect> and, when wide
// enough, a <text> with the name cut to fit. Colours come from a hash of the name, so one function
// has one colour everywhere. Frames narrower than a tenth of a pixel are left out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pprof/profile.hpp"

namespace leakless::cli {

// One merged frame of a flame graph.
struct flame_node {
  std::string name;
  std::int64_t value = 0;
  std::vector<flame_node> children;  // ordered by name
};

// The merged stacks of `p` by sample type `index`; the root is named "all".
flame_node build_flame_tree(const pprof::profile& p, std::size_t index);

struct flame_options {
  int width = 1200;   // SVG width in pixels
  std::string title;  // empty: "<sample type> — total <value>"
};

// A standalone SVG document (also valid inline in HTML) of the flame graph of `p`.
std::string render_flame_svg(const pprof::profile& p, std::size_t index,
                             const flame_options& options = {});

// `value` in the unit of a sample type: bytes as KiB/MiB, nanoseconds as ms/s, counts as is.
std::string format_value(std::int64_t value, const std::string& unit);

}  // namespace leakless::cli
