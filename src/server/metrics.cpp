// src/server/metrics.cpp — collector registry, process metrics and the exposition format
// (see metrics.hpp).
#include "server/metrics.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include <sys/resource.h>

namespace leakless::server {
namespace {

struct collector {
  std::uint64_t id;
  leakless_metrics_collect_fn collect;
  void* context;
};

// Never destroyed: a collector may be unregistered by a static object's destructor, in any order.
struct registry {
  std::mutex mutex;
  std::vector<collector> collectors;
  std::uint64_t next_id = 1;
};
registry& the_registry() {
  static registry* r = new registry;
  return *r;
}
std::atomic<std::uint64_t> g_invalid_samples{0};

void copy_sample(void* context, const leakless_metric_sample* s) {
  auto* out = static_cast<std::vector<metric_sample>*>(context);
  if (s == nullptr || s->name == nullptr || !valid_metric_name(s->name)) {
    ++g_invalid_samples;
    return;
  }
  metric_sample m;
  m.name = s->name;
  m.help = s->help != nullptr ? s->help : "";
  const std::string_view type = s->type != nullptr ? s->type : "untyped";
  m.type = type == "gauge" || type == "counter" ? std::string(type) : "untyped";
  m.value = s->value;
  for (std::size_t i = 0; i < s->label_count; ++i) {
    const char* name = s->label_names != nullptr ? s->label_names[i] : nullptr;
    const char* value = s->label_values != nullptr ? s->label_values[i] : nullptr;
    if (name == nullptr || !valid_label_name(name)) {
      ++g_invalid_samples;
      return;
    }
    m.labels.emplace_back(name, value != nullptr ? value : "");
  }
  out->push_back(std::move(m));
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char text[64];
  const auto r = std::to_chars(text, text + sizeof text, v);
  return std::string(text, r.ptr);
}

void escape(std::string& out, std::string_view text, bool quote) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

std::string read_text(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  return valid_metric_name(name) && name.find(':') == std::string_view::npos &&
         name.substr(0, 2) != "__";
}

std::uint64_t register_collector(leakless_metrics_collect_fn collect, void* context) {
  if (collect == nullptr) return 0;
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  const std::uint64_t id = r.next_id++;
  r.collectors.push_back(collector{id, collect, context});
  return id;
}

void unregister_collector(std::uint64_t id) {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  std::erase_if(r.collectors, [id](const collector& c) { return c.id == id; });
}

void collect_process_metrics(const metrics_emitter& emit) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const std::string stat = read_text("/proc/self/stat");
  const auto paren = stat.rfind(')');
  if (paren != std::string::npos) {
    // Fields after the command: state is field 3; utime 14, stime 15, num_threads 20,
    // starttime 22, vsize 23, rss 24 (proc(5), counted from 1).
    std::istringstream fields(stat.substr(paren + 2));
    std::vector<std::string> f{"", "", ""};
    for (std::string word; fields >> word;) f.push_back(word);
    const auto num = [&f](std::size_t i) {
      return i < f.size() ? std::strtod(f[i].c_str(), nullptr) : 0.0;
    };
    emit.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 (num(14) + num(15)) / ticks);
    emit.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", num(23));
    emit.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", num(24) * page);
    emit.gauge("process_threads", "Number of OS threads in the process.", num(20));
    const std::string proc_stat = read_text("/proc/stat");
    const auto btime = proc_stat.find("btime ");
    if (btime != std::string::npos) {
      const double boot = std::strtod(proc_stat.c_str() + btime + 6, nullptr);
      emit.gauge("process_start_time_seconds",
                 "Start time of the process since unix epoch in seconds.", boot + num(22) / ticks);
    }
  }
  double open_fds = 0;
  if (DIR* fds = opendir("/proc/self/fd")) {
    while (const dirent* entry = readdir(fds)) {
      if (entry->d_name[0] != '.') open_fds += 1;
    }
    closedir(fds);
    open_fds -= 1;  // the directory's own descriptor
  }
  emit.gauge("process_open_fds", "Number of open file descriptors.", open_fds);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    emit.gauge("process_max_fds", "Maximum number of open file descriptors.",
               static_cast<double>(limit.rlim_cur));
  }
  if (getrlimit(RLIMIT_AS, &limit) == 0) {
    emit.gauge("process_virtual_memory_max_bytes",
               "Maximum amount of virtual memory available in bytes.",
               limit.rlim_cur == RLIM_INFINITY ? -1.0 : static_cast<double>(limit.rlim_cur));
  }
}

std::string format_exposition(const std::vector<metric_sample>& samples) {
  std::unordered_map<std::string, std::size_t> family;  // name -> index in `order`
  std::vector<std::vector<const metric_sample*>> order;
  for (const metric_sample& s : samples) {
    const auto [it, added] = family.emplace(s.name, order.size());
    if (added) order.emplace_back();
    order[it->second].push_back(&s);
  }
  std::string out;
  for (const auto& members : order) {
    const metric_sample& first = *members.front();
    out += "# HELP " + first.name + ' ';
    escape(out, first.help, false);
    out += "\n# TYPE " + first.name + ' ' + first.type + '\n';
    for (const metric_sample* s : members) {
      out += s->name;
      if (!s->labels.empty()) {
        out += '{';
        for (std::size_t i = 0; i < s->labels.size(); ++i) {
          if (i > 0) out += ',';
          out += s->labels[i].first + "=\"";
          escape(out, s->labels[i].second, true);
          out += '"';
        }
        out += '}';
      }
      out += ' ' + format_value(s->value) + '\n';
    }
  }
  return out;
}

std::string scrape() {
  std::vector<metric_sample> samples;
  collect_process_metrics(metrics_emitter(copy_sample, &samples));
  std::uint64_t invalid = 0;
  {
    registry& r = the_registry();
    std::lock_guard lock(r.mutex);
    for (const collector& c : r.collectors) c.collect(c.context, copy_sample, &samples);
    invalid = g_invalid_samples.load();
  }
  metric_sample dropped;
  dropped.name = "leakless_metrics_invalid_samples_total";
  dropped.help = "Samples dropped from /metrics because their metric or label name is invalid.";
  dropped.type = "counter";
  dropped.value = static_cast<double>(invalid);
  samples.push_back(std::move(dropped));
  return format_exposition(samples);
}

}  // namespace leakless::server
