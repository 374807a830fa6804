// src/server/metrics.hpp — the Prometheus side of the debug server: the registry of collectors
// (one per process, behind the C ABI of <leakless/metrics.hpp>), the process_* metrics, and the
// text exposition format 0.0.4.
//
// How it works: a scrape takes the registry's lock, calls every collector in registration order
// with an emit callback that copies each sample, releases the lock, then groups the samples by
// metric name (first appearance order; one "# HELP" and "# TYPE" per name, from its first sample)
// and prints them: label values escaped (\\, \", \n), help escaped (\\, \n), values as Go's
// strconv.FormatFloat(v, 'g', -1, 64) would print them (shortest round-trip, NaN, +Inf, -Inf).
// Samples with an invalid metric or label name are dropped (and counted in
// leakless_metrics_invalid_samples_total) rather than making the whole page unparsable.
// Unregistering takes the same lock, so it waits for a collect in progress.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <leakless/metrics.hpp>

namespace leakless::server {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::uint64_t register_collector(leakless_metrics_collect_fn collect, void* context);
void unregister_collector(std::uint64_t id);

// The whole /metrics page: process_* first, then every registered collector.
std::string scrape();

// The process_* metrics (resident and virtual memory, CPU seconds, open and max fds, threads,
// start time), as Prometheus's client libraries name them.
void collect_process_metrics(const metrics_emitter& emit);

// Exposition of an already collected list (exposed for tests).
struct metric_sample {
  std::string name, help, type;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};
std::string format_exposition(const std::vector<metric_sample>& samples);

bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

}  // namespace leakless::server
