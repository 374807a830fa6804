// src/cpu/interpose/api.cpp — the public CPU profiler API (<leakless/profile.hpp>): thin wrappers
// over cpu/profiler.hpp, the rate taken from LEAKLESS_CPU_HZ.
#include <ostream>

#include "cpu/profiler.hpp"

#include <leakless/profile.hpp>

namespace leakless {

void start_cpu_profile(std::ostream& out) {
  cpu::start(out, cpu::options{cpu::hz_from_environment(), false});
}

bool stop_cpu_profile() { return cpu::stop(); }

}  // namespace leakless
