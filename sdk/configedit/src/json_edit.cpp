// JSON: a span-keeping parser and the text edits built on it.
#include <cstdlib>

#include "capstan/yaml/yaml.h"
#include "edit_internal.h"
#include "json_scan.h"

namespace capstan::configedit::detail {

using nlohmann::json;

std::pair<int, int> position(std::string_view text, std::size_t offset) {
  int line = 1;
  int col = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++col; // count characters, not UTF-8 continuation bytes
    }
  }
  return {line, col};
}

namespace {

class Scanner {
public:
  Scanner(std::string_view text, const std::string& file, JsonDoc& doc)
      : t_(text), file_(file), doc_(doc) {}

  void run() {
    skip_ws();
    if (pos_ >= t_.size()) fail("the file is empty; expected a JSON value");
    doc_.value = value("", 0);
    skip_ws();
    if (pos_ < t_.size()) fail("unexpected text after the JSON value");
  }

private:
  [[noreturn]] void fail(const std::string& msg) {
    auto [line, col] = position(t_, pos_);
    throw Error(file_, line, col, msg);
  }
  void skip_ws() {
    while (pos_ < t_.size() &&
           (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r')) {
      ++pos_;
    }
  }
  json value(const std::string& ptr, int depth) {
    if (depth > 512) fail("nesting deeper than 512 levels");
    skip_ws();
    if (pos_ >= t_.size()) fail("unexpected end of file");
    Span span;
    span.start = pos_;
    if (auto it = doc_.spans.find(ptr); it != doc_.spans.end())
      span.key_start = it->second.key_start;
    json out;
    const char c = t_[pos_];
    if (c == '{') {
      out = object(ptr, depth);
    } else if (c == '[') {
      out = array(ptr, depth);
    } else if (c == '"') {
      out = string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      out = number();
    } else if (t_.substr(pos_, 4) == "true") {
      pos_ += 4;
      out = true;
    } else if (t_.substr(pos_, 5) == "false") {
      pos_ += 5;
      out = false;
    } else if (t_.substr(pos_, 4) == "null") {
      pos_ += 4;
      out = nullptr;
    } else {
      fail(std::string("unexpected character '") + c + "'");
    }
    span.end = pos_;
    doc_.spans[ptr] = span;
    return out;
  }
  json object(const std::string& ptr, int depth) {
    ++pos_;
    json out = json::object();
    skip_ws();
    if (pos_ < t_.size() && t_[pos_] == '}') {
      ++pos_;
      return out;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= t_.size() || t_[pos_] != '"') fail("expected a quoted key");
      const std::size_t key_at = pos_;
      std::string key = string();
      if (out.contains(key)) {
        pos_ = key_at;
        fail("duplicate key \"" + key + "\"");
      }
      skip_ws();
      if (pos_ >= t_.size() || t_[pos_] != ':') fail("expected ':' after the key");
      ++pos_;
      const std::string child = yaml::pointer_append(ptr, key);
      doc_.spans[child].key_start = key_at;
      out[key] = value(child, depth + 1);
      skip_ws();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == '}') {
        ++pos_;
        return out;
      }
      fail("expected ',' or '}'");
    }
  }
  json array(const std::string& ptr, int depth) {
    ++pos_;
    json out = json::array();
    skip_ws();
    if (pos_ < t_.size() && t_[pos_] == ']') {
      ++pos_;
      return out;
    }
    for (;;) {
      out.push_back(value(yaml::pointer_append(ptr, out.size()), depth + 1));
      skip_ws();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == ']') {
        ++pos_;
        return out;
      }
      fail("expected ',' or ']'");
    }
  }
  std::string string() {
    const std::size_t start = pos_;
    ++pos_;
    while (pos_ < t_.size() && t_[pos_] != '"') {
      if (t_[pos_] == '\\')
        ++pos_;
      else if (static_cast<unsigned char>(t_[pos_]) < 0x20)
        fail("control character in a string");
      ++pos_;
    }
    if (pos_ >= t_.size()) {
      pos_ = start;
      fail("unterminated string");
    }
    ++pos_;
    try {
      return json::parse(t_.substr(start, pos_ - start)).get<std::string>();
    } catch (const json::exception&) {
      pos_ = start;
      fail("invalid string escape");
    }
  }
  json number() {
    const std::size_t start = pos_;
    if (t_[pos_] == '-') ++pos_;
    while (pos_ < t_.size() &&
           (std::isdigit(static_cast<unsigned char>(t_[pos_])) != 0 || t_[pos_] == '.' ||
            t_[pos_] == 'e' || t_[pos_] == 'E' || t_[pos_] == '+' || t_[pos_] == '-')) {
      ++pos_;
    }
    try {
      return json::parse(t_.substr(start, pos_ - start));
    } catch (const json::exception&) {
      pos_ = start;
      fail("invalid number");
    }
  }

  std::string_view t_;
  const std::string& file_;
  JsonDoc& doc_;
  std::size_t pos_ = 0;
};

std::string literal(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::strict);
}

std::string quoted_key(const std::string& k) {
  return json(k).dump(-1, ' ', false, json::error_handler_t::strict);
}

// keys[from..] → value, as a JSON value in the layout the document uses.
std::string nested(const std::vector<PathToken>& keys, std::size_t from, const json& value,
                   bool multiline, const std::string& indent, const std::string& unit,
                   const std::string& nl, const std::string& sep) {
  if (from == keys.size()) return literal(value);
  const std::string inner = indent + unit;
  const std::string child = nested(keys, from + 1, value, multiline, inner, unit, nl, sep);
  if (multiline)
    return "{" + nl + inner + quoted_key(keys[from].key) + sep + child + nl + indent + "}";
  return "{" + quoted_key(keys[from].key) + sep + child + "}";
}

} // namespace

JsonDoc scan_json(std::string_view text, const std::string& file) {
  JsonDoc doc;
  Scanner(text, file, doc).run();
  return doc;
}

std::string edit_json(std::string_view text, const Plan& plan, const std::string& file) {
  JsonDoc doc = scan_json(text, file);
  const std::string ptr = plan.pointer();
  const Span span = doc.spans.at(ptr);
  std::string out(text);
  const std::string nl = newline_of(text);
  const std::string unit = indent_string(text);
  const bool doc_multiline =
      text.find('\n') != std::string_view::npos && text.find('\n') + 1 < text.size();
  if (plan.replace()) {
    out.replace(span.start, span.end - span.start, literal(plan.value));
    return out;
  }
  const json& parent = doc.value.at(json::json_pointer(ptr));
  const std::string line_indent = leading_whitespace(text, span.start);
  if (parent.is_null()) {
    out.replace(
        span.start, span.end - span.start,
        nested(plan.path, plan.existing, plan.value, doc_multiline, line_indent, unit, nl, ": "));
    return out;
  }
  // parent is an object: add one member after its last one.
  const std::string key = plan.path[plan.existing].key;
  if (parent.empty()) {
    const std::string member_indent = line_indent + unit;
    const std::string member = quoted_key(key) + ": " +
                               nested(plan.path, plan.existing + 1, plan.value, doc_multiline,
                                      member_indent, unit, nl, ": ");
    const std::string body = doc_multiline
                                 ? "{" + nl + member_indent + member + nl + line_indent + "}"
                                 : "{" + member + "}";
    out.replace(span.start, span.end - span.start, body);
    return out;
  }
  // Copy the layout of the existing members: where the last one starts and ends, the separator.
  Span first;
  Span last;
  bool have_first = false;
  for (const auto& [p, s] : doc.spans) {
    if (p.size() <= ptr.size() || p.compare(0, ptr.size() + 1, ptr + "/") != 0) continue;
    if (p.find('/', ptr.size() + 1) != std::string::npos) continue; // grandchildren
    if (!have_first || s.key_start < first.key_start) first = s;
    if (!have_first || s.key_start > last.key_start) last = s;
    have_first = true;
  }
  const bool multiline =
      text.substr(span.start, first.key_start - span.start).find('\n') != std::string_view::npos;
  std::string sep = ": ";
  {
    std::size_t p = first.key_start + 1; // past the key's opening quote
    while (p < text.size() && text[p] != '"') p += text[p] == '\\' ? 2 : 1;
    const std::size_t colon = text.find(':', p);
    if (colon != std::string_view::npos && colon < first.start) {
      sep = std::string(text.substr(colon, first.start - colon));
      if (sep.find('\n') != std::string::npos) sep = ": ";
    }
  }
  const std::string member_indent = leading_whitespace(text, first.key_start);
  const std::string member =
      quoted_key(key) + sep +
      nested(plan.path, plan.existing + 1, plan.value, multiline, member_indent, unit, nl, sep);
  const std::string insert = multiline ? "," + nl + member_indent + member : ", " + member;
  out.insert(last.end, insert);
  return out;
}

} // namespace capstan::configedit::detail
