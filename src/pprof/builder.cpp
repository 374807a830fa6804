// TEMP STUB
#include "pprof/builder.hpp"
namespace leakless::pprof {
profile_builder::profile_builder(std::vector<value_type> st, value_type pt, std::int64_t period) { profile_.sample_types = std::move(st); profile_.period_type = std::move(pt); profile_.period = period; }
void profile_builder::set_default_sample_type(std::string t) { profile_.default_sample_type = std::move(t); }
void profile_builder::set_time(std::int64_t a, std::int64_t b) { profile_.time_nanos = a; profile_.duration_nanos = b; }
void profile_builder::add_comment(std::string c) { profile_.comments.push_back(std::move(c)); }
void profile_builder::add_sample(std::span<const std::uint64_t> a, std::span<const std::int64_t> v, std::vector<label> l) { stacks_.emplace_back(a.begin(), a.end()); profile_.samples.push_back(sample{{}, {v.begin(), v.end()}, std::move(l)}); }
profile profile_builder::build(const resolver&, const std::vector<stack::module>&) { return profile_; }
}
