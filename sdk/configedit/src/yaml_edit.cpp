// YAML: surgical text edits located through capstan::yaml's source positions.
#include <algorithm>

#include "capstan/yaml/yaml.h"
#include "edit_internal.h"

namespace capstan::configedit::detail {

using nlohmann::json;

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

// The column where a line's content starts, past indentation and "- " sequence markers.
int content_column(std::string_view text, std::size_t pos) {
  std::size_t s = line_start(text, pos);
  std::size_t i = s;
  for (;;) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i + 1 < text.size() && text[i] == '-' && (text[i + 1] == ' ' || text[i + 1] == '\t')) {
      i += 2;
      continue;
    }
    break;
  }
  return static_cast<int>(i - s);
}

bool blank_or_comment(std::string_view text, std::size_t start, std::size_t end) {
  std::size_t i = start;
  while (i < end && is_space(text[i])) ++i;
  return i >= end || text[i] == '#';
}

std::size_t next_line(std::string_view text, std::size_t pos) {
  std::size_t nl = text.find('\n', pos);
  return nl == std::string_view::npos ? text.size() : nl + 1;
}

// Where a scalar that starts at `pos` ends (one past its last byte).
std::size_t scalar_end(std::string_view text, std::size_t pos, bool flow, int owner_column,
                       const std::string& file) {
  const char c = text[pos];
  if (c == '"') {
    std::size_t i = pos + 1;
    while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
    return std::min(i + 1, text.size());
  }
  if (c == '\'') {
    std::size_t i = pos + 1;
    while (i < text.size()) {
      if (text[i] == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        i += 2;
      } else if (text[i] == '\'') {
        return i + 1;
      } else {
        ++i;
      }
    }
    return text.size();
  }
  if (c == '|' || c == '>') {
    std::size_t end = line_end(text, pos);
    for (std::size_t l = next_line(text, pos); l < text.size(); l = next_line(text, l)) {
      const std::size_t le = line_end(text, l);
      if (blank_or_comment(text, l, le) &&
          text.substr(l, le - l).find_first_not_of(" \t\r") == std::string_view::npos) {
        continue; // blank lines belong to the block only if content follows
      }
      if (indent_of_line(text, l) <= owner_column) break;
      end = le;
    }
    return end;
  }
  if (c == '*') {
    throw Error(
        file, 0, 0,
        "the value is an alias (*" +
            std::string(text.substr(pos + 1, text.find_first_of(" \r\n,]}", pos) - pos - 1)) +
            "); edit its anchor instead");
  }
  std::size_t end = pos;
  std::size_t i = pos;
  const std::size_t le = line_end(text, pos);
  while (i < le) {
    if (flow && (text[i] == ',' || text[i] == ']' || text[i] == '}')) break;
    if (text[i] == '#' && i > pos && is_space(text[i - 1])) break;
    if (flow && text[i] == ':' && i + 1 < le && is_space(text[i + 1])) break;
    ++i;
    if (!is_space(text[i - 1])) end = i;
  }
  if (flow || i < le) return end; // a comment ends it on this line
  // A plain scalar continues on more-indented lines.
  for (std::size_t l = next_line(text, pos); l < text.size(); l = next_line(text, l)) {
    const std::size_t e = line_end(text, l);
    if (blank_or_comment(text, l, e) || indent_of_line(text, l) <= owner_column) break;
    std::size_t k = e;
    while (k > l && is_space(text[k - 1])) --k;
    end = k;
  }
  return end;
}

std::string strip_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// A value written where none was: kubectl-style quoting for strings, flow JSON for collections.
std::string fresh_scalar(const json& v) {
  if (v.is_object() || v.is_array()) return v.dump();
  return strip_newline(yaml::dump(v));
}

std::string fresh_key(const std::string& key) {
  return strip_newline(yaml::dump(json(key)));
}

// A value replacing an old scalar whose first character is `style`.
std::string styled_scalar(const json& v, char style, const std::string& block_indent,
                          const std::string& nl) {
  if (!v.is_string()) return fresh_scalar(v);
  const std::string s = v.get<std::string>();
  const bool plain_text = s.find_first_of("\n\r\t") == std::string::npos &&
                          std::none_of(s.begin(), s.end(), [](char ch) {
                            return static_cast<unsigned char>(ch) < 0x20;
                          });
  if (style == '"') return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  if (style == '\'' && plain_text) {
    std::string out = "'";
    for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
    return out + "'";
  }
  if ((style == '|' || style == '>') && s.find('\n') != std::string::npos) {
    std::string body = s;
    std::string header = "|";
    if (body.back() != '\n') {
      header = "|-";
    } else {
      body.pop_back();
      if (!body.empty() && body.back() == '\n') header = "|+";
    }
    std::string out = header;
    std::size_t start = 0;
    while (start <= body.size()) {
      std::size_t e = body.find('\n', start);
      std::string line = body.substr(start, e == std::string::npos ? std::string::npos : e - start);
      out += nl + (line.empty() ? "" : block_indent + line);
      if (e == std::string::npos) break;
      start = e + 1;
    }
    if (header == "|+") out += nl;
    return out;
  }
  return fresh_scalar(v);
}

// "k1:\n  k2: v" lines for keys[from..] at `indent`, each line after the first prefixed by nl.
std::string block_lines(const std::vector<PathToken>& keys, std::size_t from, const json& value,
                        int indent, int unit, const std::string& nl) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  if (from + 1 == keys.size()) return pad + fresh_key(keys[from].key) + ": " + fresh_scalar(value);
  return pad + fresh_key(keys[from].key) + ":" + nl +
         block_lines(keys, from + 1, value, indent + unit, unit, nl);
}

std::string flow_value(const std::vector<PathToken>& keys, std::size_t from, const json& value) {
  if (from == keys.size()) return fresh_scalar(value);
  return "{" + fresh_key(keys[from].key) + ": " + flow_value(keys, from + 1, value) + "}";
}

std::size_t matching_close(std::string_view text, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      std::size_t e = scalar_end(text, i, true, -1, "");
      i = e - 1;
      continue;
    }
    if (c == '#' && i > 0 && is_space(text[i - 1])) {
      i = line_end(text, i);
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') {
      if (--depth == 0) return i;
    }
  }
  return std::string_view::npos;
}

bool is_null_word(std::string_view w) {
  return w == "~" || w == "null" || w == "Null" || w == "NULL";
}

// The decoded text of a mapping key written at `pos` (plain, "double" or 'single' quoted).
std::string key_at(std::string_view text, std::size_t pos) {
  const std::size_t le = line_end(text, pos);
  if (pos < le && (text[pos] == '"' || text[pos] == '\'')) {
    const std::size_t end = scalar_end(text, pos, true, -1, "");
    std::string raw(text.substr(pos, end - pos));
    if (raw[0] == '"') {
      try {
        return json::parse(raw).get<std::string>();
      } catch (const json::exception&) {
        return raw;
      }
    }
    std::string out;
    for (std::size_t i = 1; i + 1 < raw.size(); ++i) {
      out += raw[i];
      if (raw[i] == '\'' && raw[i + 1] == '\'') ++i;
    }
    return out;
  }
  std::size_t i = pos;
  while (i < le && !(text[i] == ':' && (i + 1 >= le || is_space(text[i + 1])))) ++i;
  std::size_t e = i;
  while (e > pos && is_space(text[e - 1])) --e;
  return std::string(text.substr(pos, e - pos));
}

} // namespace

std::string edit_yaml(std::string_view text, const Plan& plan, const std::string& file) {
  yaml::Document doc = yaml::load(text, file);
  std::vector<std::size_t> starts{0};
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') starts.push_back(i + 1);
  }
  auto offset_of = [&](const std::string& ptr) -> std::size_t {
    yaml::Mark m = doc.where.find(ptr);
    if (!m.known() || static_cast<std::size_t>(m.line) > starts.size()) {
      throw Error(file, 0, 0, "cannot locate " + ptr + " in the file");
    }
    return std::min(text.size(), starts[static_cast<std::size_t>(m.line) - 1] +
                                     static_cast<std::size_t>(m.column - 1));
  };
  // Where the key of a block-mapping member starts (yaml-cpp marks an implicit null value at the
  // token after it, so nulls are found through their key).
  auto key_position = [&](const std::string& parent_ptr, const std::string& key,
                          const std::string& ptr) -> std::size_t {
    const std::size_t ppos = offset_of(parent_ptr);
    if (ppos >= text.size() || text[ppos] == '{' || text[ppos] == '[') return offset_of(ptr);
    const std::size_t column = ppos - line_start(text, ppos);
    if (key_at(text, ppos) == key) return ppos;
    for (std::size_t l = next_line(text, ppos); l < text.size(); l = next_line(text, l)) {
      const std::size_t le = line_end(text, l);
      if (blank_or_comment(text, l, le)) continue;
      const auto indent = static_cast<std::size_t>(indent_of_line(text, l));
      if (indent < column) break;
      if (indent == column && key_at(text, l + column) == key) return l + column;
    }
    throw Error(file, 0, 0, "cannot locate " + ptr + " in the file");
  };
  const std::string nl = newline_of(text);
  const int unit = indent_unit(text);
  std::string out(text);
  const std::string ptr = plan.pointer();
  const json& node = ptr.empty() ? doc.value : doc.value.at(json::json_pointer(ptr));

  // Implicit or explicit null: text at the node's mark is its key (or a null word).
  auto null_value_span = [&](std::size_t pos, std::size_t& start, std::size_t& end) {
    const std::size_t le = line_end(text, pos);
    std::size_t i = pos;
    if (!is_null_word(
            text.substr(pos, std::min(le, text.find_first_of(" \t\r\n#,]}", pos)) - pos))) {
      // pos is the key: find its ':' and what follows.
      if (text[i] == '"' || text[i] == '\'') i = scalar_end(text, i, true, -1, file);
      while (i < le && !(text[i] == ':' && (i + 1 >= le || is_space(text[i + 1])))) ++i;
      if (i >= le) throw Error(file, 0, 0, "cannot locate the value of " + ptr);
      ++i;
      while (i < le && is_space(text[i])) ++i;
    }
    start = i;
    end = i;
    while (end < le && !is_space(text[end]) && text[end] != '#') ++end;
    if (!is_null_word(text.substr(start, end - start))) end = start; // implicit null
  };

  auto null_key_position = [&]() {
    const std::string parent_ptr = ptr.substr(0, ptr.rfind('/'));
    const PathToken& last = plan.path[plan.existing - 1];
    if (last.is_index()) return offset_of(ptr);
    return key_position(parent_ptr, last.key, ptr);
  };

  if (plan.replace()) {
    std::size_t pos = offset_of(ptr);
    if (node.is_null() && !ptr.empty()) {
      pos = null_key_position();
      std::size_t start = 0;
      std::size_t end = 0;
      null_value_span(pos, start, end);
      std::string v = fresh_scalar(plan.value);
      if (start == end && (start == 0 || !is_space(text[start - 1]))) v = " " + v;
      out.replace(start, end - start, v);
      return out;
    }
    // Skip node properties (&anchor, !tag); they stay.
    while (pos < text.size() && (text[pos] == '&' || text[pos] == '!')) {
      while (pos < text.size() && !is_space(text[pos]) && text[pos] != '\n') ++pos;
      while (pos < text.size() && is_space(text[pos])) ++pos;
    }
    std::string parent_ptr = ptr.substr(0, ptr.rfind('/'));
    bool flow = false;
    if (!ptr.empty()) {
      const std::size_t ppos = offset_of(parent_ptr);
      flow = ppos < text.size() && (text[ppos] == '{' || text[ppos] == '[') && ppos < pos &&
             matching_close(text, ppos) > pos;
    }
    // The column a continuation line must exceed: the key's, or the "- " marker's.
    const int content = content_column(text, pos);
    const int owner = pos > line_start(text, pos) + static_cast<std::size_t>(content)
                          ? content
                          : std::max(0, content - 1);
    const std::size_t end = scalar_end(text, pos, flow, owner, file);
    std::string block_indent;
    if (text[pos] == '|' || text[pos] == '>') {
      const std::size_t first = next_line(text, pos);
      block_indent.assign(
          static_cast<std::size_t>(first < text.size()
                                       ? std::max(indent_of_line(text, first), owner + unit)
                                       : owner + unit),
          ' ');
    }
    out.replace(pos, end - pos, styled_scalar(plan.value, text[pos], block_indent, nl));
    return out;
  }

  // Insert keys path[existing..] under the node at ptr.
  if (ptr.empty() && node.is_null()) {
    std::string prefix = out.empty() || out.back() == '\n' ? "" : nl;
    out += prefix + block_lines(plan.path, plan.existing, plan.value, 0, unit, nl) + nl;
    return out;
  }
  std::size_t pos = offset_of(ptr);
  if (node.is_null()) {
    pos = null_key_position();
    std::size_t start = 0;
    std::size_t end = 0;
    null_value_span(pos, start, end);
    // Drop an explicit null word, then put the keys on the lines below.
    std::size_t cut_from = start;
    while (cut_from > 0 && is_space(text[cut_from - 1])) --cut_from;
    out.erase(cut_from, end - cut_from);
    const std::size_t le = line_end(out, cut_from);
    const int indent = content_column(text, pos) + unit;
    out.insert(le, nl + block_lines(plan.path, plan.existing, plan.value, indent, unit, nl));
    return out;
  }
  if (text[pos] == '{') {
    const std::size_t close = matching_close(text, pos);
    if (close == std::string_view::npos) throw Error(file, 0, 0, "unbalanced flow mapping");
    std::size_t last = close;
    while (last > pos + 1 && (is_space(text[last - 1]) || text[last - 1] == '\n')) --last;
    const std::string member = fresh_key(plan.path[plan.existing].key) + ": " +
                               flow_value(plan.path, plan.existing + 1, plan.value);
    out.insert(last, last == pos + 1 ? member : ", " + member);
    return out;
  }
  // A block mapping whose keys start at this column; find its last line.
  const int column = static_cast<int>(pos - line_start(text, pos));
  std::size_t insert_at = line_end(text, pos);
  for (std::size_t l = next_line(text, pos); l < text.size(); l = next_line(text, l)) {
    const std::size_t le = line_end(text, l);
    if (blank_or_comment(text, l, le)) continue;
    if (text.substr(l, 3) == "---" || text.substr(l, 3) == "...") break;
    if (indent_of_line(text, l) < column) break;
    insert_at = le;
  }
  out.insert(insert_at, nl + block_lines(plan.path, plan.existing, plan.value, column, unit, nl));
  return out;
}

} // namespace capstan::configedit::detail
