// tools/leakless/profile_files.cpp — see profile_files.hpp.
//
// How it works: plain std::filesystem and std::from_chars; profiles are read with analysis.hpp's
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

std::optional<std::size_t> pick_sample_index(const pprof::profile& p, std::string_view name) {
  if (p.sample_types.empty()) return std::nullopt;
  if (name.empty()) name = p.default_sample_type;
  if (name.empty()) return p.sample_types.size() - 1;
  for (std::size_t i = 0; i < p.sample_types.size(); ++i) {
    if (p.sample_types[i].type == name) return i;
  }
  std::size_t index = 0;
  const auto r = std::from_chars(name.data(), name.data() + name.size(), index);
  if (r.ec == std::errc{} && r.ptr == name.data() + name.size() && index < p.sample_types.size()) {
    return index;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> inuse_bytes_of(const fs::path& path) {
  try {
    const pprof::profile p = load_profile(path.string());
    const std::optional<std::size_t> i = pick_sample_index(p, "inuse_space");
    if (!i) return std::nullopt;
    std::int64_t total = 0;
    for (const pprof::sample& s : p.samples) total += s.values.at(*i);
    return static_cast<std::uint64_t>(std::max<std::int64_t>(total, 0));
  } catch (const std::exception&) {
    return std::nullopt;  // being written, or not a profile: the caller shows nothing
  }
}

std::optional<double> parse_duration_seconds(std::string_view text) {
  double value = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), value);
  if (r.ec != std::errc{} || !(value >= 0)) return std::nullopt;
  const std::string_view unit(r.ptr, static_cast<std::size_t>(text.data() + text.size() - r.ptr));
  if (unit.empty() || unit == "s") return value;
  if (unit == "ms") return value / 1000;
  if (unit == "m") return value * 60;
  if (unit == "h") return value * 3600;
  return std::nullopt;
}

}  // namespace leakless::cli
