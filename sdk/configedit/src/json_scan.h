// A JSON parser that keeps the byte span of every value, for surgical edits.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace capstan::configedit::detail {

struct Span {
  std::size_t start = 0;                     // first byte of the value
  std::size_t end = 0;                       // one past its last byte
  std::size_t key_start = std::string::npos; // for object members: the key's opening quote
};

struct JsonDoc {
  nlohmann::json value;
  std::map<std::string, Span> spans; // by JSON pointer
  std::size_t find(const std::string& pointer) const {
    auto it = spans.find(pointer);
    return it == spans.end() ? 0 : it->second.start;
  }
};

// Strict RFC 8259 (duplicate keys rejected); errors are configedit::Error with line:column.
JsonDoc scan_json(std::string_view text, const std::string& file);
std::pair<int, int> position(std::string_view text, std::size_t offset); // 1-based line, column

} // namespace capstan::configedit::detail
