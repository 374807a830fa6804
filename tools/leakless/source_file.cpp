// tools/leakless/source_file.cpp — reading the source files a profile points at; see the header.
//
// How it works: the file is read line by line with std::getline; a trailing '\r' is dropped so
// files with Windows line ends print cleanly.
#include "source_file.hpp"

#include <fstream>

namespace leakless::cli {

const std::string& source_text::line(std::int64_t n) const {
  static const std::string empty;
  if (n < 1 || static_cast<std::size_t>(n) > lines.size()) return empty;
  return lines[static_cast<std::size_t>(n - 1)];
}

std::optional<source_text> read_source(const std::string& path) {
  if (path.empty()) return std::nullopt;
  std::ifstream in(path);
  if (!in) return std::nullopt;
  source_text text;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    text.lines.push_back(std::move(l));
  }
  return text;
}

}  // namespace leakless::cli
