// tools/leakless/report_error.cpp — the one way every command reports an error to the user.
//
// How it works: one line on stderr, prefixed "leakless: error: ", so scripts can grep for it and
// people see at once which tool is speaking.
#include <iostream>

#include "commands.hpp"

namespace leakless::cli {

void report_error(std::string_view message) { std::cerr << "leakless: error: " << message << "\n"; }

}  // namespace leakless::cli
