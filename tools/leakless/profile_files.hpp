// tools/leakless/profile_files.hpp — small helpers the recording and drawing commands share:
// the heap profiles in a directory as the preload library writes them, the sample type a user
// picks, durations.
//
// How it works: the preload library names its files <prefix>.<pid>.<seq>.heap.pb.gz;
// list_heap_profiles() finds the ones in a directory and orders them by pid, then by sequence
// number (numerically, so 10 comes after 9), without decoding them (analysis.hpp's
// load_snapshots() decodes a whole series and orders it by time).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pprof/profile.hpp"

namespace leakless::cli {

// The *.heap.pb.gz files directly in `dir`, oldest first (see the file comment).
std::vector<std::filesystem::path> list_heap_profiles(const std::filesystem::path& dir);

// Index of the sample type named `name` (or given as a number) in `p`; with an empty `name`, the
// profile's default sample type, else its last one (inuse_space for heap profiles, as pprof does).
// nullopt when there is no such sample type.
std::optional<std::size_t> pick_sample_index(const pprof::profile& p, std::string_view name);

// Sum of the inuse_space values of the profile at `path`; nullopt when it cannot be read.
std::optional<std::uint64_t> inuse_bytes_of(const std::filesystem::path& path);

// "500ms", "10s", "2m", "1h", "1.5s" or a bare number of seconds, in seconds; nullopt if malformed.
std::optional<double> parse_duration_seconds(std::string_view text);

}  // namespace leakless::cli
