// src/pprof/symbolizer.cpp — code addresses of this process to functions, files and lines, with
// inlined frames, using elfutils libdwfl/libdw.
//
// How it works: the constructor reports every mapping of /proc/self/maps to a Dwfl session.
// lookup(addr) finds the module and, if it has DWARF (its own or a separate debug file found
// locally), the compilation unit containing addr; dwarf_getscopes gives the innermost scope at
// addr, and dwarf_getscopes_die its plain chain of enclosing DIEs. Every DW_TAG_inlined_subroutine
// in that chain up to the enclosing DW_TAG_subprogram is one frame: the innermost frame's line
// comes from the line table, each outer frame's line is the DW_AT_call_file/DW_AT_call_line of the
// frame it inlined (the same walk as eu-addr2line -i). Names come from the linkage name, through
// DW_AT_abstract_origin and DW_AT_specification, demangled with the C++ ABI; a function without
// one (GCC omits it for internal linkage) takes the ELF symbol when it is not inlined, else its
// DWARF name qualified by its namespaces and classes. Without DWARF the ELF symbol table gives the
// name alone. Separate debug files are looked up only on this machine
// (/usr/lib/debug/.build-id and .gnu_debuglink next to the file or under /usr/lib/debug): never
// through debuginfod, which would make a profile dump wait on the network. libdw itself is
// loaded with dlopen at the first symbolizer (see load_libdw below).
//
// Memory: a dump happens inside the profiled process, whose peak RSS it adds to. The system's
// libraries (under /lib, /usr/lib) are in almost every stack (libc's start-up frames at the
// bottom) and their separate debug files are large: reading libc's DWARF to give its start-up
// frames file and line cost megabytes. So a system library is symbolized from its ELF symbol
// table alone (the full .symtab of its debug file when one is installed, which is small) unless
// the library carries DWARF in its own file; programs and libraries elsewhere keep full DWARF.
#include "pprof/symbolizer.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <dwarf.h>
#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <vector>

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

namespace leakless::pprof {
namespace {

// libdw (with libelf) is loaded on the first symbolization, not linked: a process that never
// writes a profile never maps it nor its own dependencies. Every function used here is looked up
// once into this table; calls go through dw(), which only code past a successful load reaches.
// clang-format off
#define LEAKLESS_LIBDW_FUNCTIONS(X) \
  X(dwarf_attr) X(dwarf_attr_integrate) X(dwarf_decl_line) X(dwarf_diename) X(dwarf_filesrc) \
  X(dwarf_formref_die) X(dwarf_formstring) X(dwarf_formudata) X(dwarf_getscopes) \
  X(dwarf_getscopes_die) X(dwarf_getsrcfiles) X(dwarf_tag) X(dwfl_addrmodule) X(dwfl_begin) \
  X(dwfl_end) X(dwfl_lineinfo) X(dwfl_linux_proc_find_elf) X(dwfl_linux_proc_report) \
  X(dwfl_module_addrdie) X(dwfl_module_build_id) X(dwfl_module_getelf) X(dwfl_module_getsrc) \
  X(dwfl_module_getsym_info) X(dwfl_module_getsymtab) X(dwfl_module_info) X(dwfl_report_begin) \
  X(dwfl_report_end) X(elf_getshdrstrndx) X(elf_nextscn) X(elf_strptr) X(gelf_getshdr)
// clang-format on

struct libdw_functions {
#define LEAKLESS_DECLARE(name) decltype(&::name) name = nullptr;
  LEAKLESS_LIBDW_FUNCTIONS(LEAKLESS_DECLARE)
#undef LEAKLESS_DECLARE
};

// The table, or nullptr after one line on stderr when libdw cannot be loaded: profiles are then
// still written, with addresses and mappings but no function names, files or lines.
const libdw_functions* load_libdw() {
  static const libdw_functions* const loaded = []() -> const libdw_functions* {
    static libdw_functions functions;
    void* handle = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);  // its libelf comes with it
    const char* missing = handle == nullptr ? dlerror() : nullptr;
    if (handle != nullptr) {
#define LEAKLESS_LOOK_UP(name)                                                       \
  functions.name = reinterpret_cast<decltype(functions.name)>(dlsym(handle, #name)); \
  if (functions.name == nullptr && missing == nullptr) missing = #name;
      LEAKLESS_LIBDW_FUNCTIONS(LEAKLESS_LOOK_UP)
#undef LEAKLESS_LOOK_UP
      if (missing == nullptr) return &functions;
    }
    std::fprintf(stderr,
                 "leakless: cannot use libdw.so.1 (%s): profiles show addresses, not function "
                 "names, files or lines\n",
                 missing);
    return nullptr;
  }();
  return loaded;
}

const libdw_functions& dw() { return *load_libdw(); }

int open_first(std::initializer_list<std::string> candidates, char** found) {
  for (const std::string& path : candidates) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      *found = strdup(path.c_str());
      return fd;
    }
  }
  return -1;
}

// libdwfl's find_debuginfo callback: local files only. Returning -1 lets libdwfl use the DWARF
// inside the module's own file when it has some.
int find_local_debuginfo(Dwfl_Module* mod, void**, const char*, GElf_Addr, const char* file_name,
                         const char* debuglink_file, GElf_Word, char** debuginfo_file_name) {
  const unsigned char* bits = nullptr;
  GElf_Addr vaddr = 0;
  int n = dw().dwfl_module_build_id(mod, &bits, &vaddr);
  if (n > 1) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    for (int i = 0; i < n; ++i) {
      hex.push_back(digits[bits[i] >> 4]);
      hex.push_back(digits[bits[i] & 15]);
    }
    int fd = open_first(
        {"/usr/lib/debug/.build-id/" + hex.substr(0, 2) + "/" + hex.substr(2) + ".debug"},
        debuginfo_file_name);
    if (fd >= 0) return fd;
  }
  if (debuglink_file != nullptr && file_name != nullptr) {
    std::string dir = file_name;
    dir.erase(dir.find_last_of('/') + 1);  // keeps the trailing slash; "" when there is none
    std::string link = debuglink_file;
    if (link != file_name) {
      int fd = open_first({dir + link, dir + ".debug/" + link, "/usr/lib/debug" + dir + link},
                          debuginfo_file_name);
      if (fd >= 0) return fd;
    }
  }
  return -1;
}

std::string demangle(const char* mangled) {
  int status = 0;
  char* out = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  if (status != 0 || out == nullptr) return mangled;
  std::string name = out;
  std::free(out);
  return name;
}

const char* string_attribute(Dwarf_Die* die, unsigned int name) {
  Dwarf_Attribute attr;
  return dw().dwarf_formstring(dw().dwarf_attr_integrate(die, name, &attr));
}

// The DIE that declares a function: through DW_AT_abstract_origin (an inlined or out-of-line
// instance) and DW_AT_specification (a definition outside its class or namespace).
Dwarf_Die declaration_of(Dwarf_Die* die) {
  Dwarf_Die current = *die;
  for (int hops = 0; hops < 8; ++hops) {
    Dwarf_Attribute attr;
    Dwarf_Die next;
    if ((dw().dwarf_attr(&current, DW_AT_abstract_origin, &attr) != nullptr ||
         dw().dwarf_attr(&current, DW_AT_specification, &attr) != nullptr) &&
        dw().dwarf_formref_die(&attr, &next) != nullptr) {
      current = next;
      continue;
    }
    break;
  }
  return current;
}

// "ns::type::name" from the namespaces and classes around the declaration: the name a function
// without a linkage name (GCC omits it for internal linkage) gets.
std::string qualified_name(Dwarf_Die* die, const char* name) {
  Dwarf_Die declaration = declaration_of(die);
  std::string out;
  Dwarf_Die* scopes = nullptr;
  const int n = dw().dwarf_getscopes_die(&declaration, &scopes);
  for (int i = n - 1; i >= 1; --i) {
    const int tag = dw().dwarf_tag(&scopes[i]);
    const char* scope = dw().dwarf_diename(&scopes[i]);
    if (tag == DW_TAG_namespace) {
      out += scope != nullptr ? scope : "(anonymous namespace)";
      out += "::";
    } else if ((tag == DW_TAG_class_type || tag == DW_TAG_structure_type ||
                tag == DW_TAG_union_type) &&
               scope != nullptr) {
      out += scope;
      out += "::";
    }
  }
  std::free(scopes);
  return out + name;
}

// Sets function and system_name for a subprogram or inlined subroutine DIE from its linkage
// name, or else its qualified plain name.
bool name_of(Dwarf_Die* die, frame& f) {
  const char* linkage = string_attribute(die, DW_AT_linkage_name);
  if (linkage == nullptr) linkage = string_attribute(die, DW_AT_MIPS_linkage_name);
  if (linkage != nullptr) {
    f.system_name = linkage;
    f.function = demangle(linkage);
    return true;
  }
  const char* plain = string_attribute(die, DW_AT_name);
  if (plain == nullptr) return false;
  f.function = f.system_name = qualified_name(die, plain);
  return false;  // a name, but not the mangled one
}

std::string absolute(const char* file, Dwarf_Die* cu) {
  if (file == nullptr) return {};
  if (file[0] == '/') return file;
  const char* dir = string_attribute(cu, DW_AT_comp_dir);
  if (dir == nullptr) return file;
  return std::string(dir) + "/" + file;
}

// Whether `elf` holds DWARF itself (rather than in a separate debug file).
bool has_own_dwarf(Elf* elf) {
  std::size_t names = 0;
  if (elf == nullptr || dw().elf_getshdrstrndx(elf, &names) != 0) return false;
  for (Elf_Scn* scn = dw().elf_nextscn(elf, nullptr); scn != nullptr;
       scn = dw().elf_nextscn(elf, scn)) {
    GElf_Shdr header;
    if (dw().gelf_getshdr(scn, &header) == nullptr) continue;
    const char* name = dw().elf_strptr(elf, names, header.sh_name);
    if (name != nullptr &&
        (std::strcmp(name, ".debug_info") == 0 || std::strcmp(name, ".zdebug_info") == 0)) {
      return true;
    }
  }
  return false;
}

// Whether to read `mod`'s DWARF: not for a system library whose DWARF is only in a separate
// debug file (see the top of this file).
bool wants_dwarf(Dwfl_Module* mod) {
  const char* name =
      dw().dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  if (name == nullptr) return true;
  const bool system =
      std::strncmp(name, "/lib/", 5) == 0 || std::strncmp(name, "/lib64/", 7) == 0 ||
      std::strncmp(name, "/usr/lib/", 9) == 0 || std::strncmp(name, "/usr/lib64/", 11) == 0;
  if (!system) return true;
  Dwarf_Addr bias = 0;
  return has_own_dwarf(dw().dwfl_module_getelf(mod, &bias));
}

std::int64_t decl_line(Dwarf_Die* die) {
  int line = 0;
  return dw().dwarf_decl_line(die, &line) == 0 ? line : 0;
}

}  // namespace

// A module's function symbols sorted by address. libdwfl's own address-to-symbol lookup scans the
// whole symbol table on every call, which costs seconds for a large program (cc1plus); this table
// is built once per module and searched by bisection.
class symbol_table {
 public:
  explicit symbol_table(Dwfl_Module* mod) {
    const int count = dw().dwfl_module_getsymtab(mod);
    for (int i = 1; i < count; ++i) {
      GElf_Sym sym;
      GElf_Addr address = 0;
      const char* name =
          dw().dwfl_module_getsym_info(mod, i, &sym, &address, nullptr, nullptr, nullptr);
      const int type = GELF_ST_TYPE(sym.st_info);
      if (name == nullptr || name[0] == '\0' || sym.st_shndx == SHN_UNDEF ||
          (type != STT_FUNC && type != STT_GNU_IFUNC)) {
        continue;
      }
      // Of aliases at one address, prefer a global name, then a weak one, then a local one.
      const int binding = GELF_ST_BIND(sym.st_info);
      const int rank = binding == STB_GLOBAL ? 0 : binding == STB_WEAK ? 1 : 2;
      entries_.push_back({address, sym.st_size, rank, name});
    }
    std::sort(entries_.begin(), entries_.end(), [](const entry& a, const entry& b) {
      return a.start != b.start ? a.start < b.start : a.rank < b.rank;
    });
  }

  // The symbol containing `address` (or, for symbols without a size, the nearest one below it)
  // and `address`'s offset in it; nullptr when there is none.
  const char* find(std::uint64_t address, std::uint64_t* offset) const {
    auto it = std::upper_bound(entries_.begin(), entries_.end(), address,
                               [](std::uint64_t a, const entry& e) { return a < e.start; });
    const entry* unsized = nullptr;
    // Look back over a few candidates: symbols may nest (a sized one may start below a smaller
    // one).
    for (int steps = 0; it != entries_.begin() && steps < 16; ++steps) {
      --it;
      if (it->size == 0) {
        if (unsized == nullptr) unsized = &*it;
        continue;
      }
      if (address < it->start + it->size) {
        // The best-ranked alias of this start address.
        while (it != entries_.begin() && std::prev(it)->start == it->start) --it;
        *offset = address - it->start;
        return it->name;
      }
    }
    if (unsized == nullptr) return nullptr;
    *offset = address - unsized->start;
    return unsized->name;
  }

 private:
  struct entry {
    std::uint64_t start;
    std::uint64_t size;
    int rank;
    const char* name;  // owned by libelf, valid while the Dwfl session lives
  };
  std::vector<entry> entries_;
};

struct symbolizer::impl {
  // What is known of a module once one of its addresses was looked up.
  struct module_info {
    symbol_table symbols;
    bool dwarf;  // wants_dwarf()
  };

  Dwfl_Callbacks callbacks{};
  Dwfl* dwfl = nullptr;
  std::unordered_map<std::uint64_t, symbolized> cache;
  std::unordered_map<Dwfl_Module*, module_info> modules;

  const module_info& module(Dwfl_Module* mod) {
    auto it = modules.find(mod);
    if (it == modules.end()) {
      it = modules.emplace(mod, module_info{symbol_table(mod), wants_dwarf(mod)}).first;
    }
    return it->second;
  }

  impl() {
    if (load_libdw() == nullptr) return;  // every lookup finds nothing
    callbacks.find_elf = dw().dwfl_linux_proc_find_elf;
    callbacks.find_debuginfo = find_local_debuginfo;
    dwfl = dw().dwfl_begin(&callbacks);
    if (dwfl == nullptr) return;
    dw().dwfl_report_begin(dwfl);
    int rc = dw().dwfl_linux_proc_report(dwfl, getpid());
    dw().dwfl_report_end(dwfl, nullptr, nullptr);
    if (rc != 0) {
      // No /proc, or it could not be read: addresses stay unsymbolized.
      dw().dwfl_end(dwfl);
      dwfl = nullptr;
    }
  }
  ~impl() {
    if (dwfl != nullptr) dw().dwfl_end(dwfl);
  }

  symbolized resolve(std::uint64_t address) {
    symbolized out;
    if (dwfl == nullptr) return out;
    Dwfl_Module* mod = dw().dwfl_addrmodule(dwfl, address);
    if (mod == nullptr) return out;

    const module_info& info = module(mod);
    std::uint64_t offset = 0;
    const char* symbol = info.symbols.find(address, &offset);
    if (symbol != nullptr) out.symbol_offset = offset;

    Dwarf_Addr bias = 0;
    Dwarf_Die* cu = info.dwarf ? dw().dwfl_module_addrdie(mod, address, &bias) : nullptr;
    if (cu != nullptr) add_dwarf_frames(mod, cu, address, bias, symbol, out);
    if (out.frames.empty() && symbol != nullptr) {
      frame f;
      f.system_name = symbol;
      f.function = demangle(symbol);
      out.frames.push_back(std::move(f));
    } else if (!out.frames.empty() && out.frames.back().function.empty() && symbol != nullptr) {
      out.frames.back().system_name = symbol;
      out.frames.back().function = demangle(symbol);
    }
    return out;
  }

  static void add_dwarf_frames(Dwfl_Module* mod, Dwarf_Die* cu, std::uint64_t address,
                               Dwarf_Addr bias, const char* symbol, symbolized& out) {
    Dwarf_Die* scopes = nullptr;
    int n = dw().dwarf_getscopes(cu, address - bias, &scopes);
    if (n <= 0) {
      std::free(scopes);
      return;
    }
    // Re-read the innermost scope's plain chain of parents: dwarf_getscopes continues through
    // abstract origins, which is not the call chain.
    Dwarf_Die innermost = scopes[0];
    std::free(scopes);
    scopes = nullptr;
    n = dw().dwarf_getscopes_die(&innermost, &scopes);
    if (n <= 0) {
      std::free(scopes);
      return;
    }

    Dwarf_Files* files = nullptr;
    std::size_t file_count = 0;
    if (dw().dwarf_getsrcfiles(cu, &files, &file_count) != 0) files = nullptr;

    // The innermost frame's position is the line table's.
    std::string file;
    int line = 0;
    if (Dwfl_Line* l = dw().dwfl_module_getsrc(mod, address)) {
      file = absolute(dw().dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr), cu);
    }
    for (int i = 0; i < n; ++i) {
      Dwarf_Die* die = &scopes[i];
      int tag = dw().dwarf_tag(die);
      if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram) continue;
      frame f;
      const bool mangled = name_of(die, f);
      if (tag == DW_TAG_subprogram && !mangled && symbol != nullptr) {
        // Not inlined: the ELF symbol is this function, with its full mangled name.
        f.system_name = symbol;
        f.function = demangle(symbol);
      }
      f.file = file;
      f.line = line;
      f.start_line = decl_line(die);
      out.frames.push_back(std::move(f));
      if (tag == DW_TAG_subprogram) break;
      // The caller's position is this inlined call's site.
      Dwarf_Attribute attr;
      Dwarf_Word value = 0;
      file.clear();
      line = 0;
      if (files != nullptr &&
          dw().dwarf_formudata(dw().dwarf_attr(die, DW_AT_call_file, &attr), &value) == 0 &&
          value < file_count) {
        file = absolute(dw().dwarf_filesrc(files, value, nullptr, nullptr), cu);
      }
      if (dw().dwarf_formudata(dw().dwarf_attr(die, DW_AT_call_line, &attr), &value) == 0) {
        line = static_cast<int>(value);
      }
    }
    std::free(scopes);
  }
};

symbolizer::symbolizer() : impl_(std::make_unique<impl>()) {}
symbolizer::~symbolizer() = default;

const symbolized& symbolizer::lookup(std::uint64_t address) {
  auto it = impl_->cache.find(address);
  if (it == impl_->cache.end()) it = impl_->cache.emplace(address, impl_->resolve(address)).first;
  return it->second;
}

void append_legacy_frames(std::string& out, std::uint64_t address, symbolizer& symbols) {
  char text[64];
  const symbolized& sym = symbols.lookup(address);
  if (sym.frames.empty()) {
    std::snprintf(text, sizeof text, "#\t%#" PRIx64 "\n", address);
    out += text;
    return;
  }
  for (const frame& f : sym.frames) {
    std::snprintf(text, sizeof text, "#\t%#" PRIx64 "\t", address);
    out += text;
    out += f.function;
    std::snprintf(text, sizeof text, "+%#" PRIx64 "\t", sym.symbol_offset);
    out += text;
    out += f.file;
    std::snprintf(text, sizeof text, ":%" PRId64 "\n", f.line);
    out += text;
  }
}

}  // namespace leakless::pprof
