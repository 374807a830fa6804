// TEMP STUB
#include "stack/modules.hpp"
namespace leakless::stack {
std::vector<module> loaded_modules() { return {}; }
const module* find_module(const std::vector<module>&, std::uint64_t) { return nullptr; }
}
