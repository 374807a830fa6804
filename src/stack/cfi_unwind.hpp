// src/stack/cfi_unwind.hpp — a stack unwinder for x86-64 that follows DWARF call frame
// information (CFI) through a small process-wide cache of frame rules, with no per-thread memory.
//
// Why: the heap sampler must unwind code built without frame pointers (Debian's own libraries
// are), so it needs the unwind tables. libunwind's unw_backtrace keeps a 256 KiB frame cache for
// every thread that unwinds, which alone is 1% of a 25 MiB program. The return addresses a
// program's sampled stacks go through are few (hundreds to a few thousand), and their rules are
// the same on every thread, so one shared cache of 8 bytes per return address does the same job.
//
// How it works:
// - The unwinder starts from its own registers (pc, rsp, rbp, read together by one asm
//   statement) and steps frame by frame. A frame's rule says where the canonical frame address
//   (CFA: the caller's rsp) is, rsp or rbp plus an offset; where the return address is saved
//   (CFA - 8 in ordinary x86-64 frames); and whether the caller's rbp is saved, and where. Other
//   registers do not matter: nothing here needs them.
// - A rule is looked up by return address in the cache. On a miss it is computed: _dl_find_object
//   (glibc 2.35; lock-free and async-signal-safe, unlike dl_iterate_phdr) gives the object's
//   .eh_frame_hdr, whose sorted table is binary-searched for the FDE covering the address; the CIE
//   and FDE are parsed and their CFA programs run up to the address.
// - The cache is an open-addressed table of 64-bit words, each a whole entry: the return
//   address's high bits, its distance from its home slot (the home slot is the address's low
//   bits, so those need not be stored), and the packed rule. An entry is published by one
//   compare-and-swap and read by one load, so readers and writers need no lock. It starts at
//   4,096 entries (32 KiB) and is replaced by one four times larger when half full; the old ones
//   are kept, since a reader may still be in them (their memory is counted). Rules that do not
//   fit the packing (frames over 32 KiB, say) are computed every time.
// - dlclose can unmap code whose rules are cached, and another object can be loaded at the same
//   address: cfi_flush_cache() empties the cache (libleakless.so's dlclose calls it).
// - Safety: the unwinder only reads the unwind tables of loaded objects and, on the stack, the
//   words that the rules name; every CFA must be 8-byte aligned and above the previous one (the
//   stack grows down), or the walk ends. It takes no lock and allocates nothing (a cache
//   replacement maps memory with mmap), so it is reentrant and async-signal-safe.
// - What it does not follow, reported as unwind_end::unsupported so that the caller can use a
//   general unwinder instead: code with no unwind table (JIT code, some hand-written assembly),
//   signal frames, and CFI whose CFA, return address or rbp needs a DWARF expression or another
//   register (GCC's stack-realigning "DRAP" prologues; none in Debian's libc, libstdc++, python3
//   or cppcheck, a few dozen among node's 76,000 FDEs).
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakless::stack {

enum class unwind_end : std::uint8_t {
  outermost,    // reached the thread's first frame (its return address is undefined) or a 0 pc
  full,         // `max` frames were captured before the outermost frame
  unsupported,  // a frame this unwinder cannot step through; `out` holds the frames before it
};

struct unwind_result {
  std::size_t depth = 0;
  unwind_end end = unwind_end::outermost;
};

// Fills out[0, max) with the calling thread's return addresses, innermost first: out[0] is the
// address cfi_backtrace returns to, in its caller; out[1] the one its caller returns to; and so on.
unwind_result cfi_backtrace(std::uintptr_t* out, std::size_t max) noexcept;

// Bytes of the rule caches made so far (the current one and those it replaced); 0 before the
// first rule is cached.
std::size_t cfi_cache_bytes() noexcept;
// Rules in the current cache.
std::size_t cfi_cached_rules() noexcept;
// Forgets every cached rule (after code was unmapped).
void cfi_flush_cache() noexcept;

}  // namespace leakless::stack
