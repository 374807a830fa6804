// src/server/request.cpp — listen addresses, Go's integer parsing and symbol requests
// (see request.hpp).
#include "server/request.hpp"

#include <limits>

namespace leakless::server {
namespace {

std::optional<int> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  int port = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return std::nullopt;
  return port;
}

bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '%' || c == '_';
    if (!ok) return false;
  }
  return true;
}

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

std::optional<std::uint64_t> parse_digits(std::string_view text, unsigned base) {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    const auto d = static_cast<unsigned>(digit_value(c));
    if (d >= base) return std::nullopt;
    if (value > (std::numeric_limits<std::uint64_t>::max() - d) / base) return std::nullopt;
    value = value * base + d;
  }
  return value;
}

}  // namespace

std::optional<listen_address> parse_listen_address(std::string_view text, std::string* error) {
  const auto fail = [&](const char* why) -> std::optional<listen_address> {
    if (error != nullptr) *error = why;
    return std::nullopt;
  };
  listen_address address;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']' after an IPv6 address");
    address.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') return fail("missing ':port'");
    port_text = text.substr(close + 2);
    if (address.host.empty() || address.host.find(':') == std::string::npos) {
      return fail("not an IPv6 address between '[' and ']'");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      port_text = text;
    } else {
      if (text.substr(0, colon).find(':') != std::string_view::npos) {
        return fail("an IPv6 address must be written [address]:port");
      }
      address.host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
    }
    if (address.host.empty()) address.host = "127.0.0.1";
  }
  if (!valid_host(address.host)) return fail("not a host name or address");
  const auto port = parse_port(port_text);
  if (!port) return fail("the port must be a number from 0 to 65535");
  address.port = *port;
  return address;
}

std::optional<std::int64_t> parse_go_int(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  const auto magnitude = parse_digits(text, 10);
  if (!magnitude) return std::nullopt;
  const auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (*magnitude > limit + 1) return std::nullopt;
    return *magnitude == limit + 1 ? std::numeric_limits<std::int64_t>::min()
                                   : -static_cast<std::int64_t>(*magnitude);
  }
  if (*magnitude > limit) return std::nullopt;
  return static_cast<std::int64_t>(*magnitude);
}

std::optional<std::uint64_t> parse_go_uint_any_base(std::string_view text) {
  if (text.size() >= 2 && text[0] == '0') {
    const char p = text[1];
    if (p == 'x' || p == 'X') return parse_digits(text.substr(2), 16);
    if (p == 'o' || p == 'O') return parse_digits(text.substr(2), 8);
    if (p == 'b' || p == 'B') return parse_digits(text.substr(2), 2);
    return parse_digits(text.substr(1), 8);
  }
  return parse_digits(text, 10);
}

std::vector<std::uint64_t> parse_symbol_request(std::string_view text) {
  std::vector<std::uint64_t> out;
  for (;;) {
    const auto plus = text.find('+');
    const auto value = parse_go_uint_any_base(text.substr(0, plus));
    if (value && *value != 0) out.push_back(*value);
    if (plus == std::string_view::npos) break;
    text.remove_prefix(plus + 1);
  }
  return out;
}

}  // namespace leakless::server
