// src/threads/api.cpp — the threads profile's public API (<leakless/profile.hpp>): a thin wrapper
// over threads/threads_profile.hpp, part of libleakless.so.
#include <ostream>

#include "threads/threads_profile.hpp"

#include <leakless/profile.hpp>

namespace leakless {

void write_threads_profile(std::ostream& out, int debug) {
  const std::string bytes =
      debug != 0 ? threads::threads_profile_text(debug) : threads::threads_profile_bytes();
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace leakless
