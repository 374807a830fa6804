// tools/leakless/source_file.hpp — the source lines the profile-reading commands show next to
// their numbers (`leaks` under each suspect, `list` for every matching function).
//
// How it works: a profile names files by the absolute path they had when the program was built;
// read_source() reads such a file whole into lines (1-based via line(n)) if it still exists on this
// machine, and says so when it does not, so callers can print "source not available" instead.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace leakless::cli {

struct source_text {
  std::vector<std::string> lines;
  // Line n (1-based), or "" when past the end.
  const std::string& line(std::int64_t n) const;
};

// The file's lines, or nullopt when it cannot be read.
std::optional<source_text> read_source(const std::string& path);

}  // namespace leakless::cli
