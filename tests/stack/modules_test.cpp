// tests/stack/modules_test.cpp — the module list: executable segments with paths and build IDs.
//
// How it works: the list is checked against facts found another way: the test program's own code
// lies in the module marked main_program, whose path is /proc/self/exe and whose build ID is the
// one `readelf -n` prints for that file; the C library and the vDSO are present; modules are
// sorted and disjoint; find_module answers at the edges; and a library that is dlopen'ed appears
// in the list and disappears after dlclose.
#include "stack/modules.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace leakless::stack {
namespace {

std::string self_path() {
  char buffer[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

std::string readelf_build_id(const std::string& path) {
  const std::string command = "readelf -n '" + path + "' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string id;
  char line[512];
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    if (const char* p = std::strstr(line, "Build ID: ")) {
      id = p + std::strlen("Build ID: ");
      while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    }
  }
  pclose(pipe);
  return id;
}

TEST(Modules, SortedDisjointAndNamed) {
  const std::vector<module> modules = loaded_modules();
  ASSERT_GE(modules.size(), 3u);
  for (std::size_t i = 0; i < modules.size(); ++i) {
    EXPECT_LT(modules[i].start, modules[i].limit);
    EXPECT_FALSE(modules[i].path.empty());
    if (i > 0) {
      EXPECT_LE(modules[i - 1].limit, modules[i].start);
    }
  }
}

TEST(Modules, MainProgramHasItsPathAndBuildId) {
  const std::vector<module> modules = loaded_modules();
  const module* m = find_module(modules, reinterpret_cast<std::uintptr_t>(&self_path));
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->main_program);
  EXPECT_EQ(m->path, self_path());
  const std::string expected = readelf_build_id(m->path);
  ASSERT_FALSE(expected.empty()) << "readelf found no build ID in " << m->path;
  EXPECT_EQ(m->build_id, expected);
  int main_programs = 0;
  for (const module& each : modules) main_programs += each.main_program ? 1 : 0;
  EXPECT_GE(main_programs, 1);
  for (const module& each : modules) {
    if (each.main_program) {
      EXPECT_EQ(each.path, m->path);
    }
  }
}

TEST(Modules, LibcAndVdsoArePresent) {
  const std::vector<module> modules = loaded_modules();
  const module* libc = find_module(modules, reinterpret_cast<std::uintptr_t>(&::getpid));
  ASSERT_NE(libc, nullptr);
  EXPECT_NE(libc->path.find("libc.so"), std::string::npos) << libc->path;
  EXPECT_FALSE(libc->main_program);
  EXPECT_EQ(libc->build_id, readelf_build_id(libc->path));
  bool vdso = false;
  for (const module& m : modules) vdso |= m.path == "[vdso]";
  EXPECT_TRUE(vdso);
}

TEST(Modules, FindModuleAtTheEdges) {
  const std::vector<module> modules = {{0x1000, 0x2000, 0, "/a", "", false},
                                       {0x3000, 0x4000, 0, "/b", "", false}};
  EXPECT_EQ(find_module(modules, 0xfff), nullptr);
  EXPECT_EQ(find_module(modules, 0x1000)->path, "/a");
  EXPECT_EQ(find_module(modules, 0x1fff)->path, "/a");
  EXPECT_EQ(find_module(modules, 0x2000), nullptr);
  EXPECT_EQ(find_module(modules, 0x3fff)->path, "/b");
  EXPECT_EQ(find_module(modules, 0x4000), nullptr);
  EXPECT_EQ(find_module({}, 0x1000), nullptr);
}

TEST(Modules, DlopenedLibraryComesAndGoes) {
  const auto has = [](const std::string& path) {
    for (const module& m : loaded_modules()) {
      if (m.path == path) return true;
    }
    return false;
  };
  ASSERT_FALSE(has(LEAKLESS_TEST_LIBRARY));
  void* handle = dlopen(LEAKLESS_TEST_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  EXPECT_TRUE(has(LEAKLESS_TEST_LIBRARY));
  const std::vector<module> modules = loaded_modules();
  const auto symbol =
      reinterpret_cast<std::uintptr_t>(dlsym(handle, "leakless_modules_test_function"));
  ASSERT_NE(symbol, 0u);
  const module* m = find_module(modules, symbol);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->path, LEAKLESS_TEST_LIBRARY);
  EXPECT_EQ(m->build_id, readelf_build_id(LEAKLESS_TEST_LIBRARY));
  dlclose(handle);
  EXPECT_FALSE(has(LEAKLESS_TEST_LIBRARY));
}

}  // namespace
}  // namespace leakless::stack
