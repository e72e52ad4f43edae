// JSON objects written straight to text: what the engine sends with every task is written as it
// is built, not built as a tree of nodes and then dumped.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace capstan::engine {

class JsonText {
public:
  JsonText() { text_.push_back('{'); }

  // A member with a string, number, boolean or JSON value.
  JsonText& member(std::string_view key, std::string_view value) {
    name(key);
    quote(value);
    return *this;
  }
  JsonText& member(std::string_view key, const char* value) {
    return member(key, std::string_view(value));
  }
  JsonText& member(std::string_view key, const std::string& value) {
    return member(key, std::string_view(value));
  }
  JsonText& member(std::string_view key, std::int64_t value) {
    name(key);
    text_ += std::to_string(value);
    return *this;
  }
  JsonText& member(std::string_view key, bool value) {
    name(key);
    text_ += value ? "true" : "false";
    return *this;
  }
  JsonText& member(std::string_view key, const nlohmann::json& value) {
    name(key);
    text_ += value.dump();
    return *this;
  }
  // A member whose value is JSON text already (a closed JsonText's, a cached dump).
  JsonText& raw_member(std::string_view key, std::string_view json_text) {
    name(key);
    text_ += json_text;
    return *this;
  }
  // Opens an object member: members go into it until close().
  JsonText& open(std::string_view key) {
    name(key);
    text_.push_back('{');
    return *this;
  }
  JsonText& close() {
    text_.push_back('}');
    return *this;
  }
  // The object's text, closed.
  std::string take() && {
    text_.push_back('}');
    return std::move(text_);
  }

  // Appends `value` as a JSON string, quotes included, escaped as nlohmann::json dumps it.
  static void quote(std::string& out, std::string_view value) {
    out.push_back('"');
    std::size_t plain = 0; // start of the run of characters copied as they are
    for (std::size_t i = 0; i < value.size(); ++i) {
      const auto c = static_cast<unsigned char>(value[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out.append(value.data() + plain, i - plain);
      plain = i + 1;
      switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      }
      }
    }
    out.append(value.data() + plain, value.size() - plain);
    out.push_back('"');
  }

private:
  void name(std::string_view key) {
    if (text_.back() != '{') text_.push_back(',');
    quote(key);
    text_.push_back(':');
  }
  void quote(std::string_view value) { quote(text_, value); }

  std::string text_;
};

} // namespace capstan::engine
