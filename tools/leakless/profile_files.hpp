// tools/leakless/profile_files.hpp — small helpers the recording and drawing commands share:
// the heap profiles in a directory as the preload library writes them, and the live heap of one.
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
#include <vector>

#include "pprof/profile.hpp"

namespace leakless::cli {

// The *.heap.pb.gz files directly in `dir`, oldest first (see the file comment).
std::vector<std::filesystem::path> list_heap_profiles(const std::filesystem::path& dir);

// Sum of the inuse_space values of the profile at `path`; nullopt when it cannot be read.
std::optional<std::uint64_t> inuse_bytes_of(const std::filesystem::path& path);

}  // namespace leakless::cli
