// src/core/xml_escape.hpp — text made safe to put inside HTML or XML (SVG) elements and quoted
// attributes.
//
// How it works: the five characters that can end an element or an attribute value (& < > " ')
// become entity references; everything else, UTF-8 included, is copied as it is. One function for
// the debug server's index page and the CLI's flame graphs and reports.
#pragma once

#include <string>
#include <string_view>

namespace leakless {

inline void append_xml_escaped(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
}

inline std::string xml_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_xml_escaped(out, text);
  return out;
}

}  // namespace leakless
