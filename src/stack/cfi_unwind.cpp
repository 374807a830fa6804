// src/stack/cfi_unwind.cpp — the CFI unwinder and its rule cache (see cfi_unwind.hpp for the
// design). The DWARF facts used here: .eh_frame_hdr and the pointer encodings are in the LSB
// (Linux Standard Base) "Exception Frames" chapter; CIE, FDE and the DW_CFA_* opcodes in DWARF 4
// section 6.4; the x86-64 register numbers (rbp 6, rsp 7, return address 16) in the psABI.
#include "stack/cfi_unwind.hpp"

#if !defined(__x86_64__)
#error "the CFI unwinder reads x86-64 registers and rules; port it before building elsewhere"
#endif

#include <dlfcn.h>

#include <atomic>
#include <cstring>

#include <sys/mman.h>

#include "core/leb128.hpp"

namespace leakless::stack {
namespace {

constexpr unsigned kRegBp = 6;
constexpr unsigned kRegSp = 7;
constexpr unsigned kRegRa = 16;

// ---- Frame rules -----------------------------------------------------------------------------

enum class cfa_kind : std::uint8_t {
  sp_plus,  // CFA = rsp + offset
  bp_plus,  // CFA = rbp + offset
};

struct frame_rule {
  cfa_kind kind = cfa_kind::sp_plus;
  bool outermost = false;  // the return address is undefined: the thread's first frame
  bool bp_saved = false;   // the caller's rbp is at CFA + bp_offset; otherwise rbp is unchanged
  std::int64_t cfa_offset = 0;
  std::int64_t ra_offset = -8;  // the return address is at CFA + ra_offset
  std::int64_t bp_offset = 0;
};

// ---- Reading the unwind tables ---------------------------------------------------------------

// A bounds-checked reader over bytes of a loaded object's unwind tables.
struct reader {
  const std::uint8_t* p;
  const std::uint8_t* end;
  bool ok = true;

  bool has(std::size_t n) {
    if (!ok || static_cast<std::size_t>(end - p) < n) ok = false;
    return ok;
  }
  template <class T>
  T fixed() {
    T value{};
    if (!has(sizeof(T))) return value;
    std::memcpy(&value, p, sizeof(T));
    p += sizeof(T);
    return value;
  }
  std::uint64_t uleb() {
    std::uint64_t value = 0;
    if (ok && read_uleb128(p, end, value) != leb128_status::ok) ok = false;
    return ok ? value : 0;
  }
  std::int64_t sleb() {
    std::int64_t value = 0;
    if (ok && read_sleb128(p, end, value) != leb128_status::ok) ok = false;
    return ok ? value : 0;
  }
  void skip(std::uint64_t n) {
    if (has(n)) p += n;
  }
};

// DW_EH_PE_* pointer encodings.
constexpr std::uint8_t kPeOmit = 0xff;
constexpr std::uint8_t kPeFormatMask = 0x0f;
constexpr std::uint8_t kPeApplicationMask = 0x70;
constexpr std::uint8_t kPeIndirect = 0x80;
constexpr std::uint8_t kPePcrel = 0x10;
constexpr std::uint8_t kPeDatarel = 0x30;
constexpr std::uint8_t kPeDatarelSdata4 = 0x3b;

// Reads a pointer in `encoding`; `data_base` is what DW_EH_PE_datarel is relative to.
std::uint64_t read_encoded(reader& r, std::uint8_t encoding, std::uintptr_t data_base) {
  const auto field = reinterpret_cast<std::uintptr_t>(r.p);
  std::uint64_t value = 0;
  switch (encoding & kPeFormatMask) {
    case 0x00:  // absptr
      value = r.fixed<std::uint64_t>();
      break;
    case 0x01:
      value = r.uleb();
      break;
    case 0x02:
      value = r.fixed<std::uint16_t>();
      break;
    case 0x03:
      value = r.fixed<std::uint32_t>();
      break;
    case 0x04:
      value = r.fixed<std::uint64_t>();
      break;
    case 0x09:
      value = static_cast<std::uint64_t>(r.sleb());
      break;
    case 0x0a:
      value = static_cast<std::uint64_t>(std::int64_t{r.fixed<std::int16_t>()});
      break;
    case 0x0b:
      value = static_cast<std::uint64_t>(std::int64_t{r.fixed<std::int32_t>()});
      break;
    case 0x0c:
      value = r.fixed<std::uint64_t>();
      break;
    default:
      r.ok = false;
      return 0;
  }
  switch (encoding & kPeApplicationMask) {
    case 0x00:
      break;
    case kPePcrel:
      value += field;
      break;
    case kPeDatarel:
      value += data_base;
      break;
    default:
      r.ok = false;
      return 0;  // textrel, funcrel, aligned: not used on x86-64 Linux
  }
  if ((encoding & kPeIndirect) != 0 && r.ok && value != 0) {
    value = *reinterpret_cast<const std::uint64_t*>(value);
  }
  return value;
}

// One CFI record (CIE or FDE): its contents after the length field and the address of its id.
struct record {
  const std::uint8_t* id = nullptr;  // the CIE id / CIE pointer field
  const std::uint8_t* body = nullptr;
  const std::uint8_t* end = nullptr;
  std::uint64_t id_value = 0;
};

bool read_record(const std::uint8_t* at, record& out) {
  // The tables of a loaded object are trusted to be whole; a record's length bounds its reader.
  reader r{at, at + 12};
  std::uint64_t length = r.fixed<std::uint32_t>();
  bool wide = false;
  if (length == 0xffffffffu) {
    length = r.fixed<std::uint64_t>();
    wide = true;
  }
  if (!r.ok || length == 0 || length > (std::uint64_t{1} << 32)) return false;
  out.id = r.p;
  out.end = r.p + length;
  reader body{r.p, out.end};
  out.id_value = wide ? body.fixed<std::uint64_t>() : body.fixed<std::uint32_t>();
  out.body = body.p;
  return body.ok;
}

struct cie_info {
  std::uint64_t code_align = 1;
  std::int64_t data_align = -8;
  std::uint8_t fde_encoding = 0;  // absptr unless 'R' says otherwise
  bool has_augmentation_data = false;
  bool signal_frame = false;
  const std::uint8_t* instructions = nullptr;
  const std::uint8_t* end = nullptr;
};

bool parse_cie(const std::uint8_t* at, cie_info& out) {
  record rec;
  if (!read_record(at, rec) || rec.id_value != 0) return false;
  reader r{rec.body, rec.end};
  const std::uint8_t version = r.fixed<std::uint8_t>();
  if (version != 1 && version != 3 && version != 4) return false;
  const char* augmentation = reinterpret_cast<const char*>(r.p);
  const std::size_t augmentation_length =
      strnlen(augmentation, static_cast<std::size_t>(r.end - r.p));
  r.skip(augmentation_length + 1);
  if (version == 4) {
    if (r.fixed<std::uint8_t>() != 8 || r.fixed<std::uint8_t>() != 0) return false;
  }
  out.code_align = r.uleb();
  out.data_align = r.sleb();
  const std::uint64_t ra_register = version == 1 ? r.fixed<std::uint8_t>() : r.uleb();
  if (!r.ok || ra_register != kRegRa) return false;
  if (augmentation_length > 0) {
    if (augmentation[0] != 'z') return false;  // "eh" and other pre-'z' forms: not on x86-64
    out.has_augmentation_data = true;
    const std::uint64_t data_length = r.uleb();
    if (!r.has(data_length)) return false;
    const std::uint8_t* data_end = r.p + data_length;
    for (std::size_t i = 1; i < augmentation_length && r.ok; ++i) {
      switch (augmentation[i]) {
        case 'R':
          out.fde_encoding = r.fixed<std::uint8_t>();
          break;
        case 'L':
          r.fixed<std::uint8_t>();
          break;
        case 'P': {
          const std::uint8_t encoding = r.fixed<std::uint8_t>();
          // Only its size matters here; reading it indirectly would touch the personality's GOT.
          read_encoded(r, static_cast<std::uint8_t>(encoding & ~kPeIndirect), 0);
          break;
        }
        case 'S':
          out.signal_frame = true;
          break;
        default:
          i = augmentation_length;
          break;  // unknown: the length lets us skip the rest
      }
    }
    r.p = data_end;
  }
  out.instructions = r.p;
  out.end = rec.end;
  return r.ok;
}

// The state of a CFA program: the row being built, and the rules we track.
struct reg_rule {
  enum how_t : std::uint8_t {
    unspecified,
    undefined,
    at_cfa_offset,
    unsupported
  } how = unspecified;
  std::int64_t offset = 0;
};

struct cfa_row {
  unsigned cfa_register = kRegSp;
  std::int64_t cfa_offset = 0;
  bool cfa_unsupported = false;
  bool sp_has_rule = false;  // a rule for rsp other than "it is the CFA": not followed
  reg_rule bp;
  reg_rule ra;
};

reg_rule* tracked(cfa_row& row, std::uint64_t reg) {
  if (reg == kRegBp) return &row.bp;
  if (reg == kRegRa) return &row.ra;
  return nullptr;
}

// Runs the CFA program [r.p, r.end) up to `target` (the row for `target` is left in `row`).
// `initial` is the row after the CIE's program (for DW_CFA_restore). False on a malformed or
// unknown instruction.
bool run_cfa_program(reader r, const cie_info& cie, std::uintptr_t loc, std::uintptr_t target,
                     const cfa_row& initial, cfa_row& row) {
  constexpr int kMaxRemembered = 16;
  cfa_row remembered[kMaxRemembered];
  int remembered_count = 0;
  auto advance = [&](std::uint64_t delta) {
    const std::uint64_t next = loc + delta * cie.code_align;
    if (target < next) return false;  // the row in force at target is the current one
    loc = next;
    return true;
  };
  auto set_offset = [&](std::uint64_t reg, std::int64_t offset) {
    if (reg_rule* rule = tracked(row, reg)) *rule = {reg_rule::at_cfa_offset, offset};
    if (reg == kRegSp) row.sp_has_rule = true;
  };
  auto set_other = [&](std::uint64_t reg, reg_rule::how_t how) {
    if (reg_rule* rule = tracked(row, reg)) *rule = {how, 0};
    if (reg == kRegSp) row.sp_has_rule = how != reg_rule::unspecified;
  };
  auto restore = [&](std::uint64_t reg) {
    if (reg == kRegBp) row.bp = initial.bp;
    if (reg == kRegRa) row.ra = initial.ra;
    if (reg == kRegSp) row.sp_has_rule = initial.sp_has_rule;
  };
  const auto data_align = cie.data_align;
  while (r.ok && r.p < r.end) {
    const std::uint8_t op = r.fixed<std::uint8_t>();
    const std::uint8_t low = op & 0x3f;
    switch (op >> 6) {
      case 1:  // DW_CFA_advance_loc
        if (!advance(low)) return true;
        continue;
      case 2:  // DW_CFA_offset
        set_offset(low, static_cast<std::int64_t>(r.uleb()) * data_align);
        continue;
      case 3:  // DW_CFA_restore
        restore(low);
        continue;
      default:
        break;
    }
    switch (op) {
      case 0x00:  // DW_CFA_nop
        break;
      case 0x01: {  // DW_CFA_set_loc
        const std::uint64_t next = read_encoded(r, cie.fde_encoding, 0);
        if (target < next) return true;
        loc = next;
        break;
      }
      case 0x02:  // DW_CFA_advance_loc1
        if (!advance(r.fixed<std::uint8_t>())) return true;
        break;
      case 0x03:  // DW_CFA_advance_loc2
        if (!advance(r.fixed<std::uint16_t>())) return true;
        break;
      case 0x04:  // DW_CFA_advance_loc4
        if (!advance(r.fixed<std::uint32_t>())) return true;
        break;
      case 0x05: {  // DW_CFA_offset_extended
        const std::uint64_t reg = r.uleb();
        set_offset(reg, static_cast<std::int64_t>(r.uleb()) * data_align);
        break;
      }
      case 0x06:  // DW_CFA_restore_extended
        restore(r.uleb());
        break;
      case 0x07:  // DW_CFA_undefined
        set_other(r.uleb(), reg_rule::undefined);
        break;
      case 0x08:  // DW_CFA_same_value
        set_other(r.uleb(), reg_rule::unspecified);
        break;
      case 0x09:    // DW_CFA_register
      case 0x14:    // DW_CFA_val_offset
      case 0x15: {  // DW_CFA_val_offset_sf
        const std::uint64_t reg = r.uleb();
        r.uleb();  // a register, or an offset: skipping a LEB128 number ends the same either way
        set_other(reg, reg_rule::unsupported);
        break;
      }
      case 0x0a:  // DW_CFA_remember_state
        if (remembered_count == kMaxRemembered) return false;
        remembered[remembered_count++] = row;
        break;
      case 0x0b:  // DW_CFA_restore_state
        if (remembered_count == 0) return false;
        row = remembered[--remembered_count];
        break;
      case 0x0c:  // DW_CFA_def_cfa
        row.cfa_register = static_cast<unsigned>(r.uleb());
        row.cfa_offset = static_cast<std::int64_t>(r.uleb());
        row.cfa_unsupported = false;
        break;
      case 0x0d:  // DW_CFA_def_cfa_register
        row.cfa_register = static_cast<unsigned>(r.uleb());
        break;
      case 0x0e:  // DW_CFA_def_cfa_offset
        row.cfa_offset = static_cast<std::int64_t>(r.uleb());
        break;
      case 0x0f:  // DW_CFA_def_cfa_expression: GCC's stack-realigning (DRAP) prologues, the PLT
        r.skip(r.uleb());
        row.cfa_unsupported = true;
        break;
      case 0x10:    // DW_CFA_expression
      case 0x16: {  // DW_CFA_val_expression
        const std::uint64_t reg = r.uleb();
        r.skip(r.uleb());
        set_other(reg, reg_rule::unsupported);
        break;
      }
      case 0x11: {  // DW_CFA_offset_extended_sf
        const std::uint64_t reg = r.uleb();
        set_offset(reg, r.sleb() * data_align);
        break;
      }
      case 0x12:  // DW_CFA_def_cfa_sf
        row.cfa_register = static_cast<unsigned>(r.uleb());
        row.cfa_offset = r.sleb() * data_align;
        row.cfa_unsupported = false;
        break;
      case 0x13:  // DW_CFA_def_cfa_offset_sf
        row.cfa_offset = r.sleb() * data_align;
        break;
      case 0x2e:  // DW_CFA_GNU_args_size
        r.uleb();
        break;
      case 0x2f: {  // DW_CFA_GNU_negative_offset_extended
        const std::uint64_t reg = r.uleb();
        set_offset(reg, -static_cast<std::int64_t>(r.uleb()) * data_align);
        break;
      }
      default:
        return false;
    }
  }
  return r.ok;
}

// Turns the row in force at a return address into a rule; false if this unwinder cannot follow it.
bool rule_from_row(const cfa_row& row, frame_rule& out) {
  if (row.cfa_unsupported || row.sp_has_rule) return false;
  if (row.cfa_register == kRegSp) {
    out.kind = cfa_kind::sp_plus;
  } else if (row.cfa_register == kRegBp) {
    out.kind = cfa_kind::bp_plus;
  } else {
    return false;
  }
  out.cfa_offset = row.cfa_offset;
  switch (row.ra.how) {
    case reg_rule::undefined:
      out.outermost = true;
      break;
    case reg_rule::at_cfa_offset:
      out.ra_offset = row.ra.offset;
      break;
    default:
      return false;
  }
  switch (row.bp.how) {
    case reg_rule::unspecified:
    case reg_rule::undefined:
      out.bp_saved = false;
      break;
    case reg_rule::at_cfa_offset:
      out.bp_saved = true;
      out.bp_offset = row.bp.offset;
      break;
    default:
      return false;
  }
  return true;
}

// Finds and runs the CFI covering `pc` (an address inside the instruction of interest).
bool compute_rule(std::uintptr_t pc, frame_rule& out) {
  dl_find_object object;
  if (_dl_find_object(reinterpret_cast<void*>(pc), &object) != 0 ||
      object.dlfo_eh_frame == nullptr) {
    return false;
  }
  // .eh_frame_hdr: version, three encodings, the .eh_frame pointer, the FDE count, then a table of
  // (initial location, FDE address) pairs sorted by location, both relative to the header.
  const auto* header = static_cast<const std::uint8_t*>(object.dlfo_eh_frame);
  const auto header_base = reinterpret_cast<std::uintptr_t>(header);
  reader r{header, header + 4 + 8 + 8};
  const std::uint8_t version = r.fixed<std::uint8_t>();
  const std::uint8_t frame_pointer_encoding = r.fixed<std::uint8_t>();
  const std::uint8_t count_encoding = r.fixed<std::uint8_t>();
  const std::uint8_t table_encoding = r.fixed<std::uint8_t>();
  if (!r.ok || version != 1 || count_encoding == kPeOmit || table_encoding != kPeDatarelSdata4) {
    return false;
  }
  if (frame_pointer_encoding != kPeOmit) read_encoded(r, frame_pointer_encoding, header_base);
  const std::uint64_t count = read_encoded(r, count_encoding, header_base);
  if (!r.ok || count == 0) return false;
  const std::uint8_t* table = r.p;
  auto table_field = [table](std::uint64_t entry, int field) {
    std::int32_t value;
    std::memcpy(&value, table + entry * 8 + static_cast<std::uint64_t>(field) * 4, sizeof value);
    return std::int64_t{value};
  };
  const auto relative_pc = static_cast<std::int64_t>(pc - header_base);
  // The last entry whose location is <= pc.
  std::uint64_t low = 0;
  std::uint64_t high = count;
  while (high - low > 1) {
    const std::uint64_t middle = low + (high - low) / 2;
    if (table_field(middle, 0) <= relative_pc) {
      low = middle;
    } else {
      high = middle;
    }
  }
  if (table_field(low, 0) > relative_pc) return false;

  const std::uint8_t* fde_at = header + table_field(low, 1);
  record fde;
  if (!read_record(fde_at, fde) || fde.id_value == 0) return false;
  cie_info cie;
  if (!parse_cie(fde.id - fde.id_value, cie) || cie.signal_frame) return false;
  reader f{fde.body, fde.end};
  const std::uint64_t pc_begin = read_encoded(f, cie.fde_encoding, 0);
  const std::uint64_t pc_range =
      read_encoded(f, static_cast<std::uint8_t>(cie.fde_encoding & kPeFormatMask), 0);
  if (!f.ok || pc < pc_begin || pc - pc_begin >= pc_range) return false;
  if (cie.has_augmentation_data) f.skip(f.uleb());
  if (!f.ok) return false;

  cfa_row initial;
  if (!run_cfa_program(reader{cie.instructions, cie.end}, cie, pc_begin, pc_begin, initial,
                       initial)) {
    return false;
  }
  cfa_row row = initial;
  if (!run_cfa_program(f, cie, pc_begin, pc, initial, row)) return false;
  return rule_from_row(row, out);
}

// ---- The rule cache --------------------------------------------------------------------------
//
// An entry is one word: bits 0..23 the packed rule, bits 24..26 the probe distance (0..7) from
// the home slot (the return address's low `shift` bits), bits 27..63 the return address's bits
// above `shift` (a user-space address has 47 bits, so shift >= 12 leaves at most 35; an address
// whose bits do not fit is not cached). 0 = empty.

constexpr unsigned kRuleBits = 24;
constexpr unsigned kProbeBits = 3;
constexpr unsigned kMaxProbe = (1u << kProbeBits) - 1;
constexpr unsigned kKeyShift = kRuleBits + kProbeBits;
constexpr unsigned kFirstTableShift = 12;  // 4,096 entries
constexpr unsigned kTableGrowthShift = 2;  // each replacement is 4x larger
constexpr int kMaxTables = 8;

// A rule packs into 24 bits when its offsets are multiples of 8 in range and the return address
// sits at CFA - 8, as in every ordinary x86-64 frame.
bool pack_rule(const frame_rule& rule, std::uint64_t& out) {
  auto fits = [](std::int64_t offset, unsigned bits) {
    const std::int64_t units = offset / 8;
    return offset % 8 == 0 && units >= -(std::int64_t{1} << (bits - 1)) &&
           units < (std::int64_t{1} << (bits - 1));
  };
  if (rule.ra_offset != -8 || !fits(rule.cfa_offset, 13) || !fits(rule.bp_offset, 8)) return false;
  const auto field = [](std::int64_t offset, unsigned bits) {
    return static_cast<std::uint64_t>(offset / 8) & ((std::uint64_t{1} << bits) - 1);
  };
  out = static_cast<std::uint64_t>(rule.kind) | field(rule.cfa_offset, 13) << 1 |
        std::uint64_t{rule.outermost} << 14 | std::uint64_t{rule.bp_saved} << 15 |
        field(rule.bp_offset, 8) << 16;
  return true;
}

frame_rule unpack_rule(std::uint64_t bits) {
  const auto signed_field = [](std::uint64_t value, unsigned bits_count) {
    const std::uint64_t sign = std::uint64_t{1} << (bits_count - 1);
    const auto raw = static_cast<std::int64_t>(value & ((sign << 1) - 1));
    return ((value & sign) != 0 ? raw - static_cast<std::int64_t>(sign << 1) : raw) * 8;
  };
  frame_rule rule;
  rule.kind = static_cast<cfa_kind>(bits & 1);
  rule.cfa_offset = signed_field(bits >> 1, 13);
  rule.outermost = ((bits >> 14) & 1) != 0;
  rule.bp_saved = ((bits >> 15) & 1) != 0;
  rule.bp_offset = signed_field(bits >> 16, 8);
  return rule;
}

struct rule_table {
  std::atomic<std::uint64_t>* slots = nullptr;
  unsigned shift = 0;  // log2 of the slot count
  std::atomic<std::size_t> used{0};
};

// The first table lives in .bss (its pages become resident as rules land in them) and is set up
// by constant initialisation, so allocations made before any constructor has run find it; the
// larger ones are mapped when it fills up.
constinit std::atomic<std::uint64_t> g_first_slots[std::size_t{1} << kFirstTableShift]{};
constinit rule_table g_tables[kMaxTables]{{g_first_slots, kFirstTableShift}};
constinit std::atomic<int> g_current_table{0};
constinit std::atomic<int> g_tables_made{1};
constinit std::atomic<bool> g_growing{false};
constinit std::atomic<bool> g_any_rule{false};

rule_table& current_table() { return g_tables[g_current_table.load(std::memory_order_acquire)]; }

bool cached_rule(std::uintptr_t pc, frame_rule& out) {
  rule_table& table = current_table();
  if (table.slots == nullptr) return false;
  const std::uint64_t mask = (std::uint64_t{1} << table.shift) - 1;
  const std::uint64_t key = pc >> table.shift;
  for (unsigned probe = 0; probe <= kMaxProbe; ++probe) {
    const std::uint64_t word = table.slots[(pc + probe) & mask].load(std::memory_order_relaxed);
    if (word == 0) return false;
    if (word >> kKeyShift == key && ((word >> kRuleBits) & kMaxProbe) == probe) {
      out = unpack_rule(word);
      return true;
    }
  }
  return false;
}

void grow_cache(int from) {
  bool expected = false;
  if (!g_growing.compare_exchange_strong(expected, true, std::memory_order_acquire)) return;
  const int made = g_tables_made.load(std::memory_order_acquire);
  if (g_current_table.load(std::memory_order_relaxed) == from && made < kMaxTables) {
    const unsigned shift = g_tables[from].shift + kTableGrowthShift;
    const std::size_t bytes = (std::size_t{1} << shift) * sizeof(std::uint64_t);
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory != MAP_FAILED) {
      g_tables[made].slots = static_cast<std::atomic<std::uint64_t>*>(memory);
      g_tables[made].shift = shift;
      g_tables_made.store(made + 1, std::memory_order_release);
      g_current_table.store(made, std::memory_order_release);
    }
  }
  g_growing.store(false, std::memory_order_release);
}

void cache_rule(std::uintptr_t pc, const frame_rule& rule) {
  std::uint64_t packed;
  if (!pack_rule(rule, packed)) return;
  const int index = g_current_table.load(std::memory_order_acquire);
  rule_table& table = g_tables[index];
  if (table.slots == nullptr) return;
  const std::uint64_t mask = (std::uint64_t{1} << table.shift) - 1;
  const std::uint64_t key = pc >> table.shift;
  if (key >> (64 - kKeyShift) != 0) return;
  g_any_rule.store(true, std::memory_order_relaxed);
  for (unsigned probe = 0; probe <= kMaxProbe; ++probe) {
    const std::uint64_t word = key << kKeyShift | std::uint64_t{probe} << kRuleBits | packed;
    std::uint64_t expected = 0;
    if (table.slots[(pc + probe) & mask].compare_exchange_strong(expected, word,
                                                                 std::memory_order_relaxed)) {
      if (table.used.fetch_add(1, std::memory_order_relaxed) + 1 > (mask + 1) / 2) {
        grow_cache(index);
      }
      return;
    }
    if (expected == word) return;  // another thread cached the same rule
  }
  grow_cache(index);  // eight slots in a row are taken: the table is too crowded
}

// ---- Stepping --------------------------------------------------------------------------------

struct registers {
  std::uintptr_t pc;
  std::uintptr_t sp;
  std::uintptr_t bp;
};

// Stack words are read where the rules say the caller saved them; under AddressSanitizer those
// words are never poisoned, but the reads are not the program's own, so they are not checked.
[[gnu::no_sanitize_address]] std::uintptr_t read_stack(std::uintptr_t address) {
  return *reinterpret_cast<const std::uintptr_t*>(address);
}

enum class step_result { stepped, outermost, unsupported };

// Moves `regs` from a frame to its caller's. `pc` is a return address (or, for the first frame,
// an address inside the current instruction), so the rule is looked up at pc - 1: a call that
// ends a function would otherwise find the next function's rule.
step_result step(registers& regs) {
  const std::uintptr_t lookup = regs.pc - 1;
  frame_rule rule;
  if (!cached_rule(lookup, rule)) {
    if (!compute_rule(lookup, rule)) return step_result::unsupported;
    cache_rule(lookup, rule);
  }
  if (rule.outermost) return step_result::outermost;
  const std::uintptr_t base = rule.kind == cfa_kind::sp_plus ? regs.sp : regs.bp;
  const std::uintptr_t cfa = base + static_cast<std::uintptr_t>(rule.cfa_offset);
  // The caller's frame is above this one; anything else means the rule does not describe the
  // registers we have (code that changed its stack by hand).
  if (cfa <= regs.sp || cfa % 8 != 0) return step_result::unsupported;
  const std::uintptr_t return_address =
      read_stack(cfa + static_cast<std::uintptr_t>(rule.ra_offset));
  if (rule.bp_saved) regs.bp = read_stack(cfa + static_cast<std::uintptr_t>(rule.bp_offset));
  regs.sp = cfa;
  regs.pc = return_address;
  return return_address == 0 ? step_result::outermost : step_result::stepped;
}

}  // namespace

[[gnu::noinline]] unwind_result cfi_backtrace(std::uintptr_t* out, std::size_t max) noexcept {
  registers regs;
  // One asm statement, so that the three values belong to the same instruction boundary and
  // therefore to the same CFI row.
  asm volatile(
      "lea 0(%%rip), %0\n\t"
      "mov %%rsp, %1\n\t"
      "mov %%rbp, %2"
      : "=&r"(regs.pc), "=&r"(regs.sp), "=&r"(regs.bp));
  unwind_result result;
  // The first step leaves this function's own frame, which is not reported.
  for (bool own_frame = true;; own_frame = false) {
    if (!own_frame) {
      if (result.depth == max) {
        result.end = unwind_end::full;
        return result;
      }
      out[result.depth++] = regs.pc;
    }
    switch (step(regs)) {
      case step_result::stepped:
        break;
      case step_result::outermost:
        result.end = unwind_end::outermost;
        return result;
      case step_result::unsupported:
        result.end = unwind_end::unsupported;
        return result;
    }
  }
}

std::size_t cfi_cache_bytes() noexcept {
  if (!g_any_rule.load(std::memory_order_relaxed)) return 0;
  std::size_t bytes = 0;
  const int made = g_tables_made.load(std::memory_order_acquire);
  for (int i = 0; i < made; ++i)
    bytes += (std::size_t{1} << g_tables[i].shift) * sizeof(std::uint64_t);
  return bytes;
}

std::size_t cfi_cached_rules() noexcept {
  return current_table().used.load(std::memory_order_relaxed);
}

void cfi_flush_cache() noexcept {
  rule_table& table = current_table();
  if (table.slots == nullptr) return;
  const std::size_t slots = std::size_t{1} << table.shift;
  for (std::size_t i = 0; i < slots; ++i) {
    if (table.slots[i].load(std::memory_order_relaxed) != 0) {
      table.slots[i].store(0, std::memory_order_relaxed);
    }
  }
  table.used.store(0, std::memory_order_relaxed);
}

}  // namespace leakless::stack
