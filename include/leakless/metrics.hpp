// leakless/metrics.hpp — adding metrics to the debug server's Prometheus /metrics page.
//
// How it works: the registry lives in libleakless.so (one per process) and is reached through a
// small C ABI, leakless_metrics_register / leakless_metrics_unregister. This header declares both
// weak, so header-only code (leakless::cache, say) can use it whether or not the program links or
// preloads the library: without the library the symbols are null and registering does nothing.
// A collector is a function called at every scrape of /metrics; it emits its samples (name, help,
// type, labels, value) through the callback it is given, from the scraping thread, while the
// registry's lock is held: unregistering waits for a collect in progress, so a collector's
// context can be destroyed right after its registration is. A collector must not register or
// unregister from inside collect. Samples of one metric name from several collectors (one cache
// each, say, told apart by labels) are printed together under one HELP and TYPE, the first seen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <utility>

extern "C" {

struct leakless_metric_sample {
  const char* name;  // [a-zA-Z_:][a-zA-Z0-9_:]*
  const char* help;
  const char* type;  // "gauge", "counter" or "untyped"
  const char* const* label_names;
  const char* const* label_values;
  std::size_t label_count;
  double value;
};

typedef void (*leakless_metrics_emit_fn)(void* emit_context, const leakless_metric_sample* sample);
typedef void (*leakless_metrics_collect_fn)(void* context, leakless_metrics_emit_fn emit,
                                            void* emit_context);

#if defined(LEAKLESS_BUILDING_LIBRARY)
#define LEAKLESS_METRICS_DECL __attribute__((visibility("default")))
#else
#define LEAKLESS_METRICS_DECL __attribute__((weak))
#endif

// Returns a registration id (never 0), or 0 when the collector could not be added.
LEAKLESS_METRICS_DECL std::uint64_t leakless_metrics_register(leakless_metrics_collect_fn collect,
                                                              void* context);
// Removes a registration; waits for a collect of it in progress. Unknown ids are ignored.
LEAKLESS_METRICS_DECL void leakless_metrics_unregister(std::uint64_t id);

#undef LEAKLESS_METRICS_DECL
}

namespace leakless {

namespace detail {
// Whether libleakless.so (which defines the registry) is in the process.
inline bool metrics_available() noexcept {
#if defined(LEAKLESS_BUILDING_LIBRARY)
  return true;
#else
  return &leakless_metrics_register != nullptr && &leakless_metrics_unregister != nullptr;
#endif
}
}  // namespace detail

// The emit callback of a collect, with a C++ face: emitter.gauge("name", "help", value, labels).
class metrics_emitter {
 public:
  struct label {
    const char* name;
    const char* value;
  };

  metrics_emitter(leakless_metrics_emit_fn emit, void* context) : emit_(emit), context_(context) {}

  void gauge(const char* name, const char* help, double value,
             std::initializer_list<label> labels = {}) const {
    sample(name, help, "gauge", value, labels);
  }
  void counter(const char* name, const char* help, double value,
               std::initializer_list<label> labels = {}) const {
    sample(name, help, "counter", value, labels);
  }

  void sample(const char* name, const char* help, const char* type, double value,
              std::initializer_list<label> labels) const {
    constexpr std::size_t kMaxLabels = 16;
    const char* names[kMaxLabels];
    const char* values[kMaxLabels];
    std::size_t n = 0;
    for (const label& l : labels) {
      if (n == kMaxLabels) break;
      names[n] = l.name;
      values[n] = l.value;
      ++n;
    }
    const leakless_metric_sample s{name, help, type, names, values, n, value};
    emit_(context_, &s);
  }

 private:
  leakless_metrics_emit_fn emit_;
  void* context_;
};

// RAII registration of a collector; does nothing when libleakless.so is not in the process.
class metrics_registration {
 public:
  metrics_registration() = default;
  metrics_registration(leakless_metrics_collect_fn collect, void* context) {
    if (detail::metrics_available()) id_ = leakless_metrics_register(collect, context);
  }
  ~metrics_registration() { reset(); }

  metrics_registration(metrics_registration&& other) noexcept : id_(std::exchange(other.id_, 0)) {}
  metrics_registration& operator=(metrics_registration&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, 0);
    }
    return *this;
  }
  metrics_registration(const metrics_registration&) = delete;
  metrics_registration& operator=(const metrics_registration&) = delete;

  // Unregisters now (waiting for a collect in progress).
  void reset() noexcept {
    if (id_ != 0 && detail::metrics_available()) leakless_metrics_unregister(id_);
    id_ = 0;
  }

  bool active() const noexcept { return id_ != 0; }

 private:
  std::uint64_t id_ = 0;
};

}  // namespace leakless
