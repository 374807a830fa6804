// src/heap/interpose/api.cpp — the public heap profiler API (<leakless/profile.hpp>).
//
// How it works: thin wrappers over the core — the profile writers (heap_profile.hpp) and the
// sampler's snapshot — that make sure the environment has been read first, so a program calling
// the API before its first sampled allocation still sees its configured rate.
#include <ostream>

#include "heap/heap_profile.hpp"
#include "heap/lifecycle.hpp"
#include "heap/sampler.hpp"

#include <leakless/profile.hpp>

namespace leakless {
namespace {

void write_profile(std::ostream& out, heap::profile_kind kind, int debug) {
  heap::ensure_configured();
  const std::string bytes =
      debug != 0 ? heap::heap_profile_text(kind) : heap::heap_profile_bytes(kind);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

void write_heap_profile(std::ostream& out, int debug) {
  write_profile(out, heap::profile_kind::heap, debug);
}

void write_allocs_profile(std::ostream& out, int debug) {
  write_profile(out, heap::profile_kind::allocs, debug);
}

void set_sample_rate(std::size_t bytes) noexcept {
  heap::ensure_configured();
  heap::set_sample_rate(bytes);
}

heap_profile_stats heap_stats() noexcept {
  heap::ensure_configured();
  heap_profile_stats stats;
  stats.sample_rate = heap::sample_rate();
  try {
    heap::heap_estimate sum;
    for (const heap::bucket_snapshot& s : heap::snapshot_buckets()) {
      const heap::heap_estimate e = heap::estimate(s);
      sum.alloc_objects += e.alloc_objects;
      sum.alloc_bytes += e.alloc_bytes;
      sum.inuse_objects += e.inuse_objects;
      sum.inuse_bytes += e.inuse_bytes;
    }
    const auto count = [](double v) { return v > 0 ? static_cast<std::size_t>(v + 0.5) : 0; };
    stats.alloc_objects = count(sum.alloc_objects);
    stats.alloc_bytes = count(sum.alloc_bytes);
    stats.inuse_objects = count(sum.inuse_objects);
    stats.inuse_bytes = count(sum.inuse_bytes);
  } catch (...) {
    // Out of memory for the snapshot: the estimates stay 0, the counters below still hold.
  }
  const heap::sampler_totals totals = heap::totals();
  stats.samples = totals.samples;
  stats.live_samples = totals.live_samples;
  stats.profiler_bytes = totals.profiler_bytes;
  return stats;
}

}  // namespace leakless
