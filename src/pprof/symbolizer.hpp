// src/pprof/symbolizer.hpp — turns code addresses of this process into functions, files and
// lines, including inlined frames, with elfutils libdw.
//
// How it works: a symbolizer takes a libdw (Dwfl) snapshot of the process's own mappings when it
// is built (dwfl_linux_proc_report on getpid(), with debuginfo found next to the binary or in
// /usr/lib/debug). lookup(addr) finds the module, the ELF symbol (name and offset) and, when DWARF
// is present, the chain of inlined subroutines at addr (innermost first) with each one's call site,
// so that one address yields one pprof Line per inlined frame. Names are demangled with the C++
// ABI demangler; the mangled name is kept as system_name. Results are cached per address. It is
// meant for profile-writing time, never for the allocation path or a signal handler.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace leakless::pprof {

struct frame {
  std::string function;         // demangled name, e.g. "ns::add_user(int)"; empty when unknown
  std::string system_name;      // mangled (linkage) name; equal to function for C symbols
  std::string file;             // absolute source path; empty when unknown
  std::int64_t line = 0;        // 0 when unknown
  std::int64_t start_line = 0;  // first line of the function; 0 when unknown
};

struct symbolized {
  std::vector<frame> frames;        // innermost (inlined) first; empty when nothing is known
  std::uint64_t symbol_offset = 0;  // address minus the start of the enclosing ELF symbol
};

class symbolizer {
 public:
  symbolizer();  // snapshots the modules loaded now
  ~symbolizer();
  symbolizer(const symbolizer&) = delete;
  symbolizer& operator=(const symbolizer&) = delete;

  // `address` is the address to look up: a return address minus one for callers.
  const symbolized& lookup(std::uint64_t address);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Appends the frames at `address` in Go's legacy text format (runtime/pprof's printStackRecord):
// one "#\t0xADDR\tfunction+0xOFF\tfile:line" line per (inlined) frame, or "#\t0xADDR" alone
// when nothing is known. Shared by every debug=1 profile writer.
void append_legacy_frames(std::string& out, std::uint64_t address, symbolizer& symbols);

}  // namespace leakless::pprof
