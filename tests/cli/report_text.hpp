// tests/cli/report_text.hpp — reading the text the `leakless` commands print, for the CLI tests.
//
// How it works: lines_of() splits output into lines; top_table() keeps a -top report from its
// "Showing nodes" line on and drops pprof's " (inline)" / " (partial-inline)" name suffixes, so a
// report of ours and one of `go tool pprof` compare by their numbers and names alone (the lines
// above it carry the local time, which the two tools need not print alike).
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace leakless::test {

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

inline std::string top_table(const std::string& report) {
  std::string out;
  bool on = false;
  for (std::string line : lines_of(report)) {
    on = on || line.starts_with("Showing nodes");
    for (const std::string marker : {" (partial-inline)", " (inline)"}) {
      if (line.ends_with(marker)) line.resize(line.size() - marker.size());
    }
    if (on) out += line + "\n";
  }
  return out;
}

}  // namespace leakless::test
