// src/heap/heap_profile.cpp — writes the heap and allocs profiles (see heap_profile.hpp).
#include "heap/heap_profile.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <vector>

#include "heap/sampler.hpp"
#include "pprof/builder.hpp"
#include "pprof/profile.hpp"
#include "pprof/symbolizer.hpp"
#include "stack/modules.hpp"

namespace leakless::heap {
namespace {

std::int64_t rounded(double v) { return static_cast<std::int64_t>(std::llround(v)); }

// The bucket's four values in Go's order: alloc_objects, alloc_space, inuse_objects, inuse_space.
std::array<std::int64_t, 4> rounded_values(const bucket_snapshot& s) {
  const heap_estimate e = estimate(s);
  return {rounded(e.alloc_objects), rounded(e.alloc_bytes), rounded(e.inuse_objects),
          rounded(e.inuse_bytes)};
}

// Return addresses point after the call; the call itself is one byte earlier.
std::vector<std::uint64_t> call_addresses(const std::vector<std::uintptr_t>& frames) {
  std::vector<std::uint64_t> out;
  out.reserve(frames.size());
  for (const std::uintptr_t frame : frames) out.push_back(frame - 1);
  return out;
}

// The C++ standard library's allocation plumbing: std::allocator and its traits, make_unique,
// make_shared and shared_ptr's control blocks. pprof drops these frames from the leaf side, so
// the allocation is charged to the code that asked for it, as Go's profiles charge the caller of
// new rather than runtime.mallocgc. pprof matches the whole name with its argument list removed;
// a template function's demangled name starts with its return type, hence the leading ".* ".
constexpr const char* allocation_plumbing =
    R"((.* )?(std|__gnu_cxx)::(__new_allocator|new_allocator|allocator|allocator_traits|)"
    R"(__allocated_ptr|make_unique|make_shared|allocate_shared|__make_shared|__allocate_shared|)"
    R"(_Sp_counted_ptr_inplace|__shared_count|__shared_ptr|shared_ptr)[<:].*)";

// The profiler's own figures: the end of the text profile ("# Name = value" lines, after Go's
// MemStats block) and the comments of the pprof one ("leakless Name = value", which
// `go tool pprof -comments` prints), so that a program run under the preload library shows what
// the profiler cost it.
struct own_figure {
  const char* name;
  std::uint64_t value;
};
std::array<own_figure, 9> own_figures() {
  const sampler_totals t = totals();
  return {{{"SampleRate", sample_rate()},
           {"Samples", t.samples},
           {"DroppedSamples", t.dropped},
           {"LiveSamples", t.live_samples},
           {"Buckets", t.buckets},
           {"ProfilerBytes", t.profiler_bytes},
           {"PeakProfilerBytes", t.peak_profiler_bytes},
           {"UnwindingThreads", t.unwinding_threads},
           {"UnwinderFallbacks", t.unwinder_fallbacks}}};
}

}  // namespace

std::string heap_profile_bytes(profile_kind kind) {
  busy_scope busy;
  const std::vector<bucket_snapshot> buckets = snapshot_buckets();
  const auto now = std::chrono::system_clock::now().time_since_epoch();

  pprof::profile_builder builder({{"alloc_objects", "count"},
                                  {"alloc_space", "bytes"},
                                  {"inuse_objects", "count"},
                                  {"inuse_space", "bytes"}},
                                 {"space", "bytes"}, static_cast<std::int64_t>(sample_rate()));
  if (kind == profile_kind::allocs) builder.set_default_sample_type("alloc_space");
  builder.set_drop_frames(allocation_plumbing);
  builder.set_time(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(), 0);
  for (const own_figure& f : own_figures()) {
    builder.add_comment("leakless " + std::string(f.name) + " = " + std::to_string(f.value));
  }
  for (const bucket_snapshot& s : buckets) {
    if (s.counts.allocs == 0) continue;
    const auto values = rounded_values(s);
    builder.add_sample(call_addresses(s.bucket->frames()), values,
                       {pprof::label{"bytes", "", static_cast<std::int64_t>(s.bucket->size), ""}});
  }
  pprof::symbolizer symbols;
  const pprof::profile p = builder.build(
      [&symbols](std::uint64_t address) -> const pprof::symbolized& {
        return symbols.lookup(address);
      },
      stack::loaded_modules());
  return pprof::encode_gzipped(p);
}

std::string heap_profile_text(profile_kind kind) {
  (void)kind;  // Go prints the same text for heap and allocs
  busy_scope busy;
  std::vector<bucket_snapshot> buckets = snapshot_buckets();
  const auto inuse_bytes = [](const bucket_snapshot& s) {
    return (s.counts.allocs - s.counts.frees) * s.bucket->size;
  };
  std::stable_sort(buckets.begin(), buckets.end(),
                   [&](const bucket_snapshot& a, const bucket_snapshot& b) {
                     return inuse_bytes(a) > inuse_bytes(b);
                   });

  std::uint64_t allocs = 0, alloc_bytes = 0, frees = 0, free_bytes = 0;
  for (const bucket_snapshot& s : buckets) {
    allocs += s.counts.allocs;
    alloc_bytes += s.counts.allocs * s.bucket->size;
    frees += s.counts.frees;
    free_bytes += s.counts.frees * s.bucket->size;
  }

  std::string out;
  char line[512];
  const auto append = [&](int n) {
    if (n > 0) out.append(line, std::min(static_cast<std::size_t>(n), sizeof line - 1));
  };
  append(std::snprintf(
      line, sizeof line,
      "heap profile: %" PRIu64 ": %" PRIu64 " [%" PRIu64 ": %" PRIu64 "] @ heap/%zu\n",
      allocs - frees, alloc_bytes - free_bytes, allocs, alloc_bytes, 2 * sample_rate()));

  pprof::symbolizer symbols;
  for (const bucket_snapshot& s : buckets) {
    const bucket_counts& c = s.counts;
    if (c.allocs == 0) continue;
    const std::size_t size = s.bucket->size;
    append(std::snprintf(line, sizeof line, "%" PRIu64 ": %" PRIu64 " [%" PRIu64 ": %" PRIu64 "] @",
                         c.allocs - c.frees, (c.allocs - c.frees) * size, c.allocs,
                         c.allocs * size));
    const std::vector<std::uintptr_t> frames = s.bucket->frames();
    for (const std::uintptr_t frame : frames) {
      append(std::snprintf(line, sizeof line, " %#" PRIxPTR, frame));
    }
    out += '\n';
    for (const std::uint64_t address : call_addresses(frames)) {
      pprof::append_legacy_frames(out, address, symbols);
    }
    out += '\n';
  }

  out += "\n# leakless\n";
  for (const own_figure& f : own_figures()) {
    append(std::snprintf(line, sizeof line, "# %s = %" PRIu64 "\n", f.name, f.value));
  }
  return out;
}

}  // namespace leakless::heap
