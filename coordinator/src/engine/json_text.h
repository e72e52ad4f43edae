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
  // Room for a task's context or a run's record without growing the text step by step.
  JsonText() {
    text_.reserve(512);
    text_.push_back('{');
  }

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
    // What value.dump(-1, ' ', false, replace) writes, written into the text in place.
    nlohmann::detail::serializer<nlohmann::json> out(
        nlohmann::detail::output_adapter<char, std::string>(text_), ' ',
        nlohmann::json::error_handler_t::replace);
    out.dump(value, false, false, 0);
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
  // Invalid UTF-8 (an expression that cut a character in two, say) becomes U+FFFD, as
  // nlohmann::json's replacing dump writes it, so the text stays JSON every plugin can parse.
  static void quote(std::string& out, std::string_view value) {
    const std::size_t start = out.size();
    out.push_back('"');
    std::size_t plain = 0; // start of the run of characters copied as they are
    bool multibyte = false;
    for (std::size_t i = 0; i < value.size(); ++i) {
      const auto c = static_cast<unsigned char>(value[i]);
      if (c >= 0x80) multibyte = true;
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
    if (multibyte && !valid_utf8(value)) {
      out.resize(start);
      out += nlohmann::json(std::string(value))
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }

  // Whether `value` is well-formed UTF-8 (no overlong forms, surrogates or code points past
  // U+10FFFF).
  static bool valid_utf8(std::string_view value) {
    const auto* s = reinterpret_cast<const unsigned char*>(value.data());
    const std::size_t n = value.size();
    for (std::size_t i = 0; i < n;) {
      const unsigned char c = s[i];
      if (c < 0x80) {
        ++i;
        continue;
      }
      std::size_t len = 0;
      char32_t cp = 0;
      if ((c & 0xE0) == 0xC0) {
        len = 2, cp = c & 0x1F;
      } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F;
      } else if ((c & 0xF8) == 0xF0) {
        len = 4, cp = c & 0x07;
      } else {
        return false;
      }
      if (i + len > n) return false;
      for (std::size_t k = 1; k < len; ++k) {
        if ((s[i + k] & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (s[i + k] & 0x3F);
      }
      static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      i += len;
    }
    return true;
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
