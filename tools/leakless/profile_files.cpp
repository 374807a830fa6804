// tools/leakless/profile_files.cpp — see profile_files.hpp.
//
// How it works: plain std::filesystem and std::from_chars; a profile is read with analysis.hpp's
// load_profile().
#include "profile_files.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "analysis.hpp"

namespace leakless::cli {

namespace fs = std::filesystem;

namespace {

// <prefix>.<pid>.<seq>.heap.pb.gz -> (pid, seq); nullopt for other names.
std::optional<std::pair<std::uint64_t, std::uint64_t>> pid_and_seq(const std::string& name) {
  constexpr std::string_view suffix = ".heap.pb.gz";
  if (name.size() <= suffix.size() || !name.ends_with(suffix)) return std::nullopt;
  const std::string stem = name.substr(0, name.size() - suffix.size());
  const std::size_t dot_seq = stem.rfind('.');
  if (dot_seq == std::string::npos || dot_seq == 0) return std::nullopt;
  const std::size_t dot_pid = stem.rfind('.', dot_seq - 1);
  if (dot_pid == std::string::npos) return std::nullopt;
  std::uint64_t pid = 0, seq = 0;
  const char* b = stem.data();
  auto r1 = std::from_chars(b + dot_pid + 1, b + dot_seq, pid);
  auto r2 = std::from_chars(b + dot_seq + 1, b + stem.size(), seq);
  if (r1.ec != std::errc{} || r1.ptr != b + dot_seq || r2.ec != std::errc{} ||
      r2.ptr != b + stem.size()) {
    return std::nullopt;
  }
  return std::make_pair(pid, seq);
}

}  // namespace

std::vector<fs::path> list_heap_profiles(const fs::path& dir) {
  std::vector<std::tuple<std::uint64_t, std::uint64_t, fs::path>> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    if (auto key = pid_and_seq(it->path().filename().string())) {
      found.emplace_back(key->first, key->second, it->path());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(std::move(std::get<2>(f)));
  return out;
}

std::optional<std::uint64_t> inuse_bytes_of(const fs::path& path) {
  try {
    const pprof::profile p = load_profile(path.string());
    const std::size_t i = sample_index(p, "inuse_space");
    std::int64_t total = 0;
    for (const pprof::sample& s : p.samples) total += s.values.at(i);
    return static_cast<std::uint64_t>(std::max<std::int64_t>(total, 0));
  } catch (const std::exception&) {
    return std::nullopt;  // being written, or not a profile: the caller shows nothing
  }
}

}  // namespace leakless::cli
