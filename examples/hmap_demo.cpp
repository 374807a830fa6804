// examples/hmap_demo.cpp — leakless::hmap, Go's map design in C++, in two parts.
//
// How it works: part 1 replays the Go map basics (make, literal, zero value and comma-ok lookup,
// delete, range) with hmap. Part 2 replays the leak from the Go story: a map that grew to 100,000
// entries and then had 99% of them deleted. Go's map keeps all of its buckets; std::unordered_map
// keeps its bucket array too. The demo prints the memory both containers hold before and after the
// deletions (std::unordered_map as an estimate: bucket array plus one node per entry), and then
// after an explicit compaction of each. It checks the surviving entries and exits non-zero if any
// result is wrong, so scripts can use it as a smoke test.
#include <cstddef>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <string>
#include <unordered_map>
#include <utility>

#include <leakless/hmap.hpp>
#include <leakless/version.hpp>

namespace {

// Bytes std::unordered_map holds: its bucket array plus, per entry, a node with a next pointer and
// the key/value pair (libstdc++ does not cache the hash of an int key). Allocator overhead per node
// is not counted, so the real figure is higher.
template <class Map>
std::size_t unordered_map_bytes(const Map& map) {
  const std::size_t node_bytes = sizeof(void*) + sizeof(typename Map::value_type);
  return map.bucket_count() * sizeof(void*) + map.size() * node_bytes;
}

std::string kib(std::size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  return text;
}

// One line of the memory table: label, then the size right-aligned.
void row(const char* label, std::size_t bytes, const std::string& note) {
  std::cout << "    " << std::left << std::setw(31) << label << std::right << std::setw(12)
            << kib(bytes) << "  " << note << "\n";
}

template <class Stats>
void print_stats(const char* label, const Stats& s) {
  std::cout << "    " << label << ": count=" << s.count << " buckets=" << s.bucket_count
            << " overflow=" << s.overflow_buckets << " growing=" << (s.growing ? "yes" : "no")
            << " shrinking=" << (s.shrinking ? "yes" : "no") << " memory=" << kib(s.memory_bytes)
            << "\n";
}

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::cerr << "hmap_demo: FAILED: " << what << "\n";
    ++failures;
  }
}

void basics() {
  std::cout << "== Part 1: Go map basics with leakless::hmap ==\n";

  // ageMap := make(map[string]int); ageMap["Alice"] = 30
  leakless::hmap<std::string, int> age_map;
  age_map["Alice"] = 30;
  std::cout << "make:      age_map[\"Alice\"] = " << age_map.get("Alice") << "\n";
  check(age_map.get("Alice") == 30, "age_map[\"Alice\"] == 30");

  // scoreMap := map[string]int{"Math": 95, "English": 82}
  leakless::hmap<std::string, int> score_map{{"Math", 95}, {"English", 82}};
  std::cout << "literal:   score_map has " << score_map.size() << " entries\n";
  check(score_map.size() == 2, "literal has 2 entries");

  // A missing key reads as the zero value, which can be mistaken for a real score...
  std::cout << "zero:      score_map.get(\"Science\") = " << score_map.get("Science") << "\n";
  check(score_map.get("Science") == 0, "missing key reads as 0");

  // ...so use the comma-ok form: if value, ok := scoreMap["Science"]; ok { ... }
  if (const int* score = score_map.lookup("Science")) {
    std::cout << "comma-ok:  Score: " << *score << "\n";
  } else {
    std::cout << "comma-ok:  Subject not found\n";
  }
  check(score_map.lookup("Science") == nullptr, "lookup of a missing key gives nullptr");
  check(!score_map.contains("Science"), "contains() of a missing key is false");

  // m[key] = value adds or modifies; insert_or_assign tells which it did.
  score_map["Science"] = 77;
  const bool inserted = score_map.insert_or_assign("Math", 99);
  std::cout << "assign:    Science added, Math updated (inserted=" << std::boolalpha << inserted
            << ")\n";
  check(!inserted && score_map.get("Math") == 99, "insert_or_assign updates Math");

  // delete(scoreMap, "English"); deleting a missing key is not an error.
  const std::size_t removed = score_map.erase("English");
  const std::size_t removed_missing = score_map.erase("Art");
  std::cout << "delete:    erase(\"English\") removed " << removed << ", erase(\"Art\") removed "
            << removed_missing << "\n";
  check(removed == 1 && removed_missing == 0, "erase counts");

  // for key, value := range scoreMap — the order is unspecified, as in Go.
  std::cout << "range:    ";
  int total = 0;
  for (auto&& [subject, score] : score_map) {
    std::cout << " " << subject << "=" << score;
    total += score;
  }
  std::cout << "\n";
  check(total == 99 + 77, "range visits every entry once");
}

void memory_after_erasing() {
  std::cout << "\n== Part 2: memory after erasing 99% ==\n";
  std::cout << "m := make(map[int]int, 1000); insert 100000 keys; delete 99000 of them\n\n";

  constexpr int kInserted = 100000;
  constexpr int kErased = 99000;

  std::unordered_map<int, int> std_map;
  std_map.reserve(1000);
  leakless::hmap<int, int> hmap(1000);

  for (int i = 0; i < kInserted; ++i) {
    std_map[i] = i;
    hmap[i] = i;
  }
  const std::size_t std_peak = unordered_map_bytes(std_map);
  const std::size_t hmap_peak = hmap.memory_bytes();
  const std::size_t hmap_peak_buckets = hmap.stats().bucket_count;
  std::cout << "  after inserting " << kInserted << ":\n";
  row("std::unordered_map (estimate)", std_peak,
      std::to_string(std_map.bucket_count()) + " buckets");
  row("leakless::hmap", hmap_peak, std::to_string(hmap_peak_buckets) + " buckets");
  print_stats("hmap.stats()", hmap.stats());

  for (int i = 0; i < kErased; ++i) {
    std_map.erase(i);
    hmap.erase(i);
  }
  const auto after = hmap.stats();
  std::cout << "  after erasing " << kErased << " (" << hmap.size() << " left):\n";
  row("std::unordered_map (estimate)", unordered_map_bytes(std_map),
      std::to_string(std_map.bucket_count()) + " buckets: erase never shrinks the bucket array");
  row("leakless::hmap", hmap.memory_bytes(),
      after.bucket_count < hmap_peak_buckets
          ? std::to_string(after.bucket_count) + " buckets: shrank while erasing"
          : std::to_string(after.bucket_count) + " buckets");
  print_stats("hmap.stats()", after);

  // The survivors must all still be there with their values.
  bool survivors_ok = hmap.size() == static_cast<std::size_t>(kInserted - kErased);
  for (int i = kErased; i < kInserted; ++i) {
    const int* value = hmap.lookup(i);
    survivors_ok = survivors_ok && value != nullptr && *value == i;
  }
  check(survivors_ok, "the 1000 surviving entries are intact after erasing");
  check(hmap.lookup(0) == nullptr, "an erased key is gone");

  // Explicit compaction: Go's answer is to copy into a new map; here each container has a call.
  std_map.rehash(0);
  hmap.shrink_to_fit();
  std::cout << "  after std_map.rehash(0) and hmap.shrink_to_fit():\n";
  row("std::unordered_map (estimate)", unordered_map_bytes(std_map),
      std::to_string(std_map.bucket_count()) + " buckets");
  row("leakless::hmap", hmap.memory_bytes(),
      std::to_string(hmap.stats().bucket_count) + " buckets");
  print_stats("hmap.stats()", hmap.stats());
  check(hmap.size() == static_cast<std::size_t>(kInserted - kErased), "size after shrink_to_fit");
  check(hmap.memory_bytes() <= hmap_peak, "shrink_to_fit does not grow the map");
}

}  // namespace

int main() {
  std::cout << "leakless " << leakless::version() << " — hmap demo\n\n";
  basics();
  memory_after_erasing();
  if (failures != 0) {
    std::cerr << "hmap_demo: " << failures << " check(s) failed\n";
    return 1;
  }
  std::cout << "\nhmap_demo: all checks passed\n";
  return 0;
}
