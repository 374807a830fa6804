// src/stack/modules.hpp — the executable code mapped into this process, for pprof mappings.
//
// How it works: dl_iterate_phdr lists every loaded ELF object; each executable PT_LOAD segment
// becomes one module with its address range, file offset, absolute path (the main program's
// empty loader name is resolved through /proc/self/exe; the vDSO is named [vdso]) and its GNU
// build ID read from the PT_NOTE segments in memory (NT_GNU_BUILD_ID), as lowercase hex.
// It must not be called from a signal handler or while holding a lock that malloc takes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace leakless::stack {

struct module {
  std::uint64_t start = 0;        // first byte of the executable segment
  std::uint64_t limit = 0;        // one past the last byte
  std::uint64_t file_offset = 0;  // offset in the file of `start`
  std::string path;               // absolute path, or "[vdso]"
  std::string build_id;           // lowercase hex; empty when the object has none
  bool main_program = false;      // the executable itself (pprof wants it as mapping 1)
};

// The executable segments of every object loaded now, sorted by start address.
std::vector<module> loaded_modules();

// The module containing `address`, or nullptr.
const module* find_module(const std::vector<module>& modules, std::uint64_t address);

}  // namespace leakless::stack
