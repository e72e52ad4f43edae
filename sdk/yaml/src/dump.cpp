// JSON values → block-style YAML in kubectl's layout, quoting whatever would not read back as is.
#include <cmath>

#include "capstan/yaml/yaml.h"
#include "scalar.h"

namespace capstan::yaml {
namespace {

using nlohmann::json;

bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  if (s.front() == ' ' || s.back() == ' ' || s.front() == '\t' || s.back() == '\t') return true;
  static constexpr std::string_view kIndicators = "-?:,[]{}#&*!|>'\"%@`";
  if (kIndicators.find(s.front()) != std::string_view::npos) {
    // "-x", "?x" and ":x" are plain-safe when followed by a non-space, but quoting is simpler
    // and always correct.
    return true;
  }
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  if (s.back() == ':') return true;
  if (s == "---" || s == "...") return true;
  // YAML 1.1 readers (kubectl's among them) take these as booleans.
  static constexpr std::string_view kYaml11Bools[] = {"y",  "Y",   "yes", "Yes", "YES", "n",
                                                      "N",  "no",  "No",  "NO",  "on",  "On",
                                                      "ON", "off", "Off", "OFF"};
  for (auto word : kYaml11Bools) {
    if (s == word) return true;
  }
  return !detail::plain_is_string(s);
}

std::string double_quoted(const std::string& s) {
  // JSON string escapes are valid YAML double-quoted escapes.
  return json(s).dump();
}

void write_scalar(std::string& out, const json& v) {
  switch (v.type()) {
  case json::value_t::null:
    out += "null";
    break;
  case json::value_t::boolean:
    out += v.get<bool>() ? "true" : "false";
    break;
  case json::value_t::number_float: {
    double d = v.get<double>();
    if (std::isnan(d)) {
      out += ".nan";
    } else if (std::isinf(d)) {
      out += d > 0 ? ".inf" : "-.inf";
    } else {
      out += v.dump();
    }
    break;
  }
  case json::value_t::string: {
    const auto& s = v.get_ref<const std::string&>();
    out += needs_quotes(s) ? double_quoted(s) : s;
    break;
  }
  default:
    out += v.dump();
  }
}

bool is_block_candidate(const std::string& s) {
  // Multi-line text reads best as a literal block; the plain cases only, so the block is
  // always exact.
  if (s.find('\n') == std::string::npos) return false;
  if (s.front() == ' ' || s.front() == '\n') return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n') || u == 0x7f) return false;
  }
  // Trailing spaces on a line survive a literal block, but a line of only spaces before the
  // end would be read as indentation; keep it simple and quote those.
  return s.find(" \n") == std::string::npos;
}

void write_block(std::string& out, const std::string& s, int indent) {
  std::size_t trailing = 0;
  while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') ++trailing;
  out += trailing == 0 ? "|-" : (trailing == 1 ? "|" : "|+");
  std::string body = s.substr(0, s.size() - trailing);
  std::string pad(static_cast<std::size_t>(indent), ' ');
  std::size_t start = 0;
  for (;;) {
    auto nl = body.find('\n', start);
    std::string line = body.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    out += '\n';
    if (!line.empty()) out += pad + line;
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  for (std::size_t i = 1; i < trailing; ++i) out += '\n';
}

bool is_empty_collection(const json& v) {
  return (v.is_object() || v.is_array()) && v.empty();
}

void write_value(std::string& out, const json& v, int indent);

void write_key(std::string& out, const std::string& key) {
  out += needs_quotes(key) ? double_quoted(key) : key;
  out += ':';
}

// Writes the value that follows "key:" or "- ".
void write_after(std::string& out, const json& v, int indent, bool in_sequence) {
  if (v.is_object() && !v.empty()) {
    if (in_sequence) {
      write_value(out, v, indent); // first key on the dash line
    } else {
      out += '\n';
      out += std::string(static_cast<std::size_t>(indent), ' ');
      write_value(out, v, indent);
    }
  } else if (v.is_array() && !v.empty()) {
    // kubectl style: a list under a key is not indented further.
    out += '\n';
    int list_indent = in_sequence ? indent : indent - 2;
    out += std::string(static_cast<std::size_t>(list_indent), ' ');
    write_value(out, v, list_indent);
  } else if (is_empty_collection(v)) {
    if (!in_sequence) out += ' ';
    out += v.is_object() ? "{}" : "[]";
  } else {
    if (!in_sequence) out += ' ';
    if (v.is_string() && is_block_candidate(v.get_ref<const std::string&>())) {
      write_block(out, v.get_ref<const std::string&>(), indent);
    } else {
      write_scalar(out, v);
    }
  }
}

// Writes v at the current position; the cursor already stands at column `indent`.
void write_value(std::string& out, const json& v, int indent) {
  std::string pad(static_cast<std::size_t>(indent), ' ');
  if (v.is_object() && !v.empty()) {
    bool first = true;
    for (const auto& [k, child] : v.items()) {
      if (!first) out += '\n' + pad;
      first = false;
      write_key(out, k);
      write_after(out, child, indent + 2, false);
    }
  } else if (v.is_array() && !v.empty()) {
    bool first = true;
    for (const auto& child : v) {
      if (!first) out += '\n' + pad;
      first = false;
      out += "- ";
      write_after(out, child, indent + 2, true);
    }
  } else if (is_empty_collection(v)) {
    out += v.is_object() ? "{}" : "[]";
  } else if (v.is_string() && is_block_candidate(v.get_ref<const std::string&>())) {
    write_block(out, v.get_ref<const std::string&>(), indent + 2);
  } else {
    write_scalar(out, v);
  }
}

} // namespace

std::string dump(const json& value) {
  std::string out;
  write_value(out, value, 0);
  out += '\n';
  return out;
}

std::string dump_all(const std::vector<json>& values) {
  std::string out;
  bool first = true;
  for (const auto& v : values) {
    if (!first) out += "---\n";
    first = false;
    out += dump(v);
  }
  return out;
}

} // namespace capstan::yaml
