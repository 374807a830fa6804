// src/stack/modules.cpp — lists the executable segments mapped into this process, with build IDs.
//
// How it works: dl_iterate_phdr hands us each loaded object's program headers and load bias. An
// executable PT_LOAD segment becomes a module (bias + p_vaddr .. + p_memsz, p_offset). The GNU
// build ID is found by walking the object's PT_NOTE segments in memory: each note is a header
// (namesz, descsz, type) followed by the 4-byte-aligned name and descriptor, and we want name
// "GNU" with type NT_GNU_BUILD_ID. The loader reports the main program with an empty name, so its
// path comes from /proc/self/exe; the vDSO has no file and is named "[vdso]" as pprof expects.
#include "stack/modules.hpp"

#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace leakless::stack {
namespace {

constexpr std::size_t align4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

std::string hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 15]);
  }
  return out;
}

std::string build_id_of(const dl_phdr_info& info) {
  for (int i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info.dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info.dlpi_addr + ph.p_vaddr);
    const unsigned char* end = p + ph.p_memsz;
    while (static_cast<std::size_t>(end - p) >= sizeof(ElfW(Nhdr))) {
      ElfW(Nhdr) note;
      std::memcpy(&note, p, sizeof note);
      const unsigned char* name = p + sizeof note;
      const unsigned char* desc = name + align4(note.n_namesz);
      const unsigned char* next = desc + align4(note.n_descsz);
      if (next > end || next < p) break;  // malformed note: stop rather than read past it
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
          std::memcmp(name, "GNU", 4) == 0 && note.n_descsz > 0) {
        return hex(desc, note.n_descsz);
      }
      p = next;
    }
  }
  return {};
}

std::string main_program_path() {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return {};
  return std::string(path, static_cast<std::size_t>(n));
}

struct walk_state {
  std::vector<module>* out;
  bool first = true;
};

int add_object(dl_phdr_info* info, std::size_t, void* data) {
  auto& state = *static_cast<walk_state*>(data);
  bool is_main = state.first;
  state.first = false;
  std::string path = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (is_main && path.empty()) {
    path = main_program_path();
  } else if (path.find("linux-vdso") != std::string::npos ||
             path.find("linux-gate") != std::string::npos) {
    path = "[vdso]";
    is_main = false;
  }
  std::string build_id;
  bool build_id_read = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0 || ph.p_memsz == 0) continue;
    if (!build_id_read) {
      build_id = build_id_of(*info);
      build_id_read = true;
    }
    module m;
    m.start = info->dlpi_addr + ph.p_vaddr;
    m.limit = m.start + ph.p_memsz;
    m.file_offset = ph.p_offset;
    m.path = path;
    m.build_id = build_id;
    m.main_program = is_main;
    state.out->push_back(std::move(m));
  }
  return 0;
}

}  // namespace

std::vector<module> loaded_modules() {
  std::vector<module> modules;
  walk_state state{&modules};
  dl_iterate_phdr(add_object, &state);
  std::sort(modules.begin(), modules.end(),
            [](const module& a, const module& b) { return a.start < b.start; });
  return modules;
}

const module* find_module(const std::vector<module>& modules, std::uint64_t address) {
  auto it = std::upper_bound(modules.begin(), modules.end(), address,
                             [](std::uint64_t a, const module& m) { return a < m.start; });
  if (it == modules.begin()) return nullptr;
  --it;
  return address < it->limit ? &*it : nullptr;
}

}  // namespace leakless::stack
