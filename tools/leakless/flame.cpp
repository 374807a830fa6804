// tools/leakless/flame.cpp — `leakless flame FILE -o flame.svg`: a profile as a flame graph.
//
// How it works: reads FILE with the pprof codec, picks the sample type (--sample-index: a name
// such as alloc_space or an index; default: the profile's default type, else its last one, as
// pprof does), and writes render_flame_svg()'s standalone SVG to the output file (or stdout for
// "-"). The SVG needs no script: hovering a frame shows its <title>.
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "analysis.hpp"
#include "commands.hpp"
#include "flame_graph.hpp"
#include "profile_view.hpp"

namespace leakless::cli {
namespace {

struct flame_options_cli {
  std::string file;
  std::string out = "-";
  std::string sample_index;
  int width = 1200;
};

int flame(const flame_options_cli& o) {
  pprof::profile p;
  try {
    p = load_profile(o.file);
  } catch (const std::exception& e) {
    report_error(e.what());
    return exit_failure;
  }
  std::size_t index = 0;
  try {
    index = choose_sample_index(p, o.sample_index);
  } catch (const std::exception& e) {
    report_error("--sample-index: " + std::string(e.what()) + " in " + o.file);
    return exit_usage;
  }
  flame_options options;
  options.width = o.width;
  const std::string svg = render_flame_svg(p, index, options);
  if (o.out == "-") {
    std::cout << svg;
    return exit_ok;
  }
  std::ofstream out(o.out, std::ios::binary | std::ios::trunc);
  out << svg;
  out.close();
  if (!out) {
    report_error("cannot write " + o.out);
    return exit_failure;
  }
  return exit_ok;
}

}  // namespace

void add_flame_command(CLI::App& app, int& status) {
  auto opts = std::make_shared<flame_options_cli>();
  CLI::App* cmd = app.add_subcommand("flame", "Draw a profile as a flame graph (standalone SVG)");
  cmd->add_option("file", opts->file, "A pprof profile (.pb.gz)")->required();
  cmd->add_option("-o,--output", opts->out, "The SVG file to write; - for stdout")
      ->capture_default_str();
  cmd->add_option("--sample-index,--sample_index", opts->sample_index,
                  "Sample type by name or index (default: the profile's default, e.g. "
                  "inuse_space)");
  cmd->add_option("--width", opts->width, "Width in pixels")
      ->check(CLI::Range(200, 20000))
      ->capture_default_str();
  cmd->callback([opts, &status] { status = flame(*opts); });
}

}  // namespace leakless::cli
