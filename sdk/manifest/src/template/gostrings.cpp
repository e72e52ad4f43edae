// Go string literal quoting and unquoting, byte for byte as strconv does it.
#include "gostrings.h"

#include <cstdio>

namespace capstan::manifest::tmpl {
namespace {

bool is_printable(std::int32_t r) {
  if (r < 0x20 || r == 0x7f) return false;
  if (r < 0x7f) return true;
  if (r >= 0x80 && r < 0xa0) return false; // C1 controls
  if (r == 0xad || r == 0x2028 || r == 0x2029 || r == 0xfeff) return false;
  if (r >= 0xd800 && r < 0xe000) return false;
  if (r > 0x10ffff) return false;
  return true;
}

void append_escaped_rune(std::string& out, std::int32_t r, char quote) {
  char buf[16];
  if (r == quote || r == '\\') {
    out += '\\';
    out += static_cast<char>(r);
    return;
  }
  if (is_printable(r)) {
    utf8_append(out, r);
    return;
  }
  switch (r) {
  case '\a':
    out += "\\a";
    return;
  case '\b':
    out += "\\b";
    return;
  case '\f':
    out += "\\f";
    return;
  case '\n':
    out += "\\n";
    return;
  case '\r':
    out += "\\r";
    return;
  case '\t':
    out += "\\t";
    return;
  case '\v':
    out += "\\v";
    return;
  default:
    break;
  }
  if (r < ' ' || r == 0x7f) {
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(r));
  } else if (r < 0x10000) {
    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(r));
  } else {
    std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(r));
  }
  out += buf;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads one (possibly escaped) character of a quoted literal at s[i]; appends it to out as
// UTF-8 (or as a raw byte for \x and octal escapes). Returns false when malformed.
bool unquote_one(std::string_view s, std::size_t& i, char quote, std::string& out,
                 std::int32_t* rune_out) {
  if (s[i] != '\\') {
    std::int32_t r = 0;
    int n = utf8_decode(s, i, r);
    if (s[i] == quote || s[i] == '\n') return false;
    out.append(s.substr(i, static_cast<std::size_t>(n)));
    i += static_cast<std::size_t>(n);
    if (rune_out) *rune_out = r;
    return true;
  }
  ++i;
  if (i >= s.size()) return false;
  char c = s[i++];
  std::int32_t value = 0;
  switch (c) {
  case 'a':
    value = '\a';
    break;
  case 'b':
    value = '\b';
    break;
  case 'f':
    value = '\f';
    break;
  case 'n':
    value = '\n';
    break;
  case 'r':
    value = '\r';
    break;
  case 't':
    value = '\t';
    break;
  case 'v':
    value = '\v';
    break;
  case '\\':
    value = '\\';
    break;
  case '\'':
  case '"':
    if (c != quote) return false;
    value = c;
    break;
  case 'x':
  case 'u':
  case 'U': {
    int digits = c == 'x' ? 2 : (c == 'u' ? 4 : 8);
    if (i + static_cast<std::size_t>(digits) > s.size()) return false;
    for (int k = 0; k < digits; ++k) {
      int h = hex_value(s[i++]);
      if (h < 0) return false;
      value = value * 16 + h;
    }
    if (c == 'x') {
      out += static_cast<char>(value); // a byte, not a rune
      if (rune_out) *rune_out = value;
      return true;
    }
    if (value > 0x10ffff || (value >= 0xd800 && value < 0xe000)) return false;
    break;
  }
  case '0':
  case '1':
  case '2':
  case '3':
  case '4':
  case '5':
  case '6':
  case '7': {
    value = c - '0';
    for (int k = 0; k < 2; ++k) {
      if (i >= s.size() || s[i] < '0' || s[i] > '7') return false;
      value = value * 8 + (s[i++] - '0');
    }
    if (value > 255) return false;
    out += static_cast<char>(value);
    if (rune_out) *rune_out = value;
    return true;
  }
  default:
    return false;
  }
  utf8_append(out, value);
  if (rune_out) *rune_out = value;
  return true;
}

} // namespace

int utf8_decode(std::string_view s, std::size_t i, std::int32_t& rune) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    rune = b0;
    return 1;
  }
  int len = 0;
  std::int32_t r = 0;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2;
    r = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3;
    r = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4;
    r = b0 & 0x07;
  } else {
    rune = 0xfffd;
    return 1;
  }
  if (i + static_cast<std::size_t>(len) > s.size()) {
    rune = 0xfffd;
    return 1;
  }
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
    if ((b & 0xc0) != 0x80) {
      rune = 0xfffd;
      return 1;
    }
    r = (r << 6) | (b & 0x3f);
  }
  static constexpr std::int32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (r < kMin[len] || r > 0x10ffff || (r >= 0xd800 && r < 0xe000)) {
    rune = 0xfffd;
    return 1;
  }
  rune = r;
  return len;
}

void utf8_append(std::string& out, std::int32_t r) {
  if (r < 0 || r > 0x10ffff || (r >= 0xd800 && r < 0xe000)) r = 0xfffd;
  auto u = static_cast<std::uint32_t>(r);
  if (u < 0x80) {
    out += static_cast<char>(u);
  } else if (u < 0x800) {
    out += static_cast<char>(0xc0 | (u >> 6));
    out += static_cast<char>(0x80 | (u & 0x3f));
  } else if (u < 0x10000) {
    out += static_cast<char>(0xe0 | (u >> 12));
    out += static_cast<char>(0x80 | ((u >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (u & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (u >> 18));
    out += static_cast<char>(0x80 | ((u >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((u >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (u & 0x3f));
  }
}

std::size_t utf8_count(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    std::int32_t r = 0;
    i += static_cast<std::size_t>(utf8_decode(s, i, r));
    ++n;
  }
  return n;
}

std::string go_quote(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    std::int32_t r = 0;
    int n = utf8_decode(s, i, r);
    if (r == 0xfffd && n == 1 && static_cast<unsigned char>(s[i]) >= 0x80) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[i]));
      out += buf;
    } else {
      append_escaped_rune(out, r, '"');
    }
    i += static_cast<std::size_t>(n);
  }
  out += '"';
  return out;
}

std::string go_quote_rune(std::int32_t r) {
  std::string out = "'";
  if (r < 0 || r > 0x10ffff || (r >= 0xd800 && r < 0xe000)) r = 0xfffd;
  append_escaped_rune(out, r, '\'');
  out += '\'';
  return out;
}

std::optional<std::string> go_unquote(std::string_view lit) {
  if (lit.size() < 2) return std::nullopt;
  char q = lit.front();
  if (lit.back() != q) return std::nullopt;
  std::string_view body = lit.substr(1, lit.size() - 2);
  std::string out;
  if (q == '`') {
    if (body.find('`') != std::string_view::npos) return std::nullopt;
    for (char c : body) {
      if (c != '\r') out += c;
    }
    return out;
  }
  if (q != '"') return std::nullopt;
  std::size_t i = 0;
  while (i < body.size()) {
    if (!unquote_one(body, i, '"', out, nullptr)) return std::nullopt;
  }
  return out;
}

std::optional<std::int32_t> go_unquote_char(std::string_view lit) {
  if (lit.size() < 3 || lit.front() != '\'' || lit.back() != '\'') return std::nullopt;
  std::string_view body = lit.substr(1, lit.size() - 2);
  std::string out;
  std::size_t i = 0;
  std::int32_t r = 0;
  if (!unquote_one(body, i, '\'', out, &r)) return std::nullopt;
  if (i != body.size()) return std::nullopt;
  return r;
}

std::vector<std::string> split_string(std::string_view s, std::string_view sep) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (;;) {
    auto at = s.find(sep, pos);
    if (at == std::string_view::npos) break;
    out.emplace_back(s.substr(pos, at - pos));
    pos = at + sep.size();
  }
  out.emplace_back(s.substr(pos));
  return out;
}

std::string go_rune_name(std::int32_t r) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(r));
  std::string out = buf;
  if (is_printable(r)) {
    out += " '";
    utf8_append(out, r);
    out += "'";
  }
  return out;
}

} // namespace capstan::manifest::tmpl
