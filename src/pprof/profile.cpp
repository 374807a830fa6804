// TEMP STUB
#include "pprof/profile.hpp"
namespace leakless::pprof {
std::string encode(const profile&) { return {}; }
std::string gzip(std::string_view d) { return std::string(d); }
std::string encode_gzipped(const profile& p) { return gzip(encode(p)); }
profile decode(std::string_view, std::size_t) { return {}; }
}
