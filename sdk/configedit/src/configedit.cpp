// Edit planning shared by both formats: path parsing, value typing, validation, verification.
#include "capstan/configedit/configedit.h"

#include <algorithm>
#include <cctype>

#include "capstan/yaml/yaml.h"
#include "edit_internal.h"
#include "json_scan.h"

namespace capstan::configedit {

using nlohmann::json;

Error::Error(const std::string& file, int line, int column, const std::string& message)
    : std::runtime_error(
          file +
          (line > 0 ? ":" + std::to_string(line) + ":" + std::to_string(column) : std::string()) +
          ": " + message),
      file_(file), line_(line), column_(column) {}

Format format_for(const std::string& file_name) {
  auto dot = file_name.rfind('.');
  std::string ext = dot == std::string::npos ? "" : file_name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == "json") return Format::kJson;
  if (ext == "yaml" || ext == "yml") return Format::kYaml;
  throw Error(file_name, 0, 0, "unsupported config file type (expected .json, .yaml or .yml)");
}

std::vector<PathToken> parse_path(const std::string& path) {
  auto fail = [&](const std::string& why) -> void {
    throw Error("<path>", 0, 0, "invalid path '" + path + "': " + why);
  };
  std::vector<PathToken> out;
  std::size_t i = 0;
  bool expect_key = true;
  while (i < path.size()) {
    const char c = path[i];
    if (c == '[') {
      std::size_t close = path.find(']', i);
      if (i + 1 < path.size() && (path[i + 1] == '"' || path[i + 1] == '\'')) {
        const char q = path[i + 1];
        std::string key;
        std::size_t j = i + 2;
        while (j < path.size() && path[j] != q) {
          if (path[j] == '\\' && j + 1 < path.size()) ++j; // \" and \\ inside the quotes
          key += path[j++];
        }
        if (j + 1 >= path.size() || path[j + 1] != ']') fail("unterminated quoted key");
        out.push_back({key, -1});
        i = j + 2;
      } else {
        if (close == std::string::npos || close == i + 1) fail("expected [N]");
        const std::string digits = path.substr(i + 1, close - i - 1);
        if (!std::all_of(digits.begin(), digits.end(), ::isdigit) || digits.size() > 9) {
          fail("list index '" + digits + "' is not a number");
        }
        out.push_back({"", std::stol(digits)});
        i = close + 1;
      }
      expect_key = false;
      continue;
    }
    if (c == '.') {
      if (expect_key) fail("empty key");
      ++i;
      expect_key = true;
      if (i == path.size()) fail("ends with '.'");
      continue;
    }
    if (!expect_key) fail("expected '.' or '[' after ']'");
    std::size_t end = i;
    while (end < path.size() && path[end] != '.' && path[end] != '[') ++end;
    std::string key = path.substr(i, end - i);
    while (!key.empty() && key.back() == ' ') key.pop_back();
    while (!key.empty() && key.front() == ' ') key.erase(0, 1);
    if (key.empty()) fail("empty key");
    out.push_back({key, -1});
    i = end;
    expect_key = false;
  }
  if (out.empty()) fail("empty path");
  return out;
}

namespace detail {

std::string Plan::pointer() const {
  std::string p;
  for (std::size_t i = 0; i < existing; ++i) {
    p = path[i].is_index() ? yaml::pointer_append(p, static_cast<std::size_t>(path[i].index))
                           : yaml::pointer_append(p, path[i].key);
  }
  return p;
}

std::string newline_of(std::string_view text) {
  return text.find("\r\n") != std::string_view::npos ? "\r\n" : "\n";
}

int indent_unit(std::string_view text) {
  int best = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    int n = 0;
    while (pos + n < end && text[pos + n] == ' ') ++n;
    const bool content = pos + n < end && text[pos + n] != '\r' && text[pos + n] != '#';
    if (content && n > 0 && (best == 0 || n < best)) best = n;
    pos = end + 1;
  }
  return best > 0 && best <= 8 ? best : 2;
}

std::size_t line_start(std::string_view text, std::size_t pos) {
  while (pos > 0 && text[pos - 1] != '\n') --pos;
  return pos;
}

std::size_t line_end(std::string_view text, std::size_t pos) {
  while (pos < text.size() && text[pos] != '\n') ++pos;
  if (pos > 0 && pos <= text.size() && pos - 1 < text.size() && text[pos - 1] == '\r') --pos;
  return pos;
}

int indent_of_line(std::string_view text, std::size_t pos) {
  std::size_t s = line_start(text, pos);
  int n = 0;
  while (s + n < text.size() && text[s + n] == ' ') ++n;
  return n;
}

std::string leading_whitespace(std::string_view text, std::size_t pos) {
  std::size_t s = line_start(text, pos);
  std::size_t e = s;
  while (e < text.size() && (text[e] == ' ' || text[e] == '\t')) ++e;
  return std::string(text.substr(s, e - s));
}

std::string indent_string(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    if (pos < end && text[pos] == '\t') return "\t";
    if (pos < end && text[pos] == ' ') break;
    pos = end + 1;
  }
  return std::string(static_cast<std::size_t>(indent_unit(text)), ' ');
}

} // namespace detail

namespace {

std::string trim(const std::string& s) {
  std::size_t a = 0;
  std::size_t b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a])) != 0) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1])) != 0) --b;
  return s.substr(a, b - a);
}

// "5" replacing a number stays a number, and so on; see the header.
json typed(const json* old, const json& given) {
  if (!given.is_string() || old == nullptr) return given;
  const std::string s = given.get<std::string>();
  if (old->is_number()) {
    try {
      json n = json::parse(s);
      if (n.is_number()) return n;
    } catch (const json::exception&) {
    }
  } else if (old->is_boolean()) {
    if (s == "true") return true;
    if (s == "false") return false;
  } else if (old->is_null()) {
    if (s == "null") return nullptr;
  }
  return given;
}

std::string describe(const json& v) {
  if (v.is_object()) return "a mapping";
  if (v.is_array()) return "a list";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  return "null";
}

std::string path_prefix(const std::vector<PathToken>& path, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (path[i].is_index()) {
      out += "[" + std::to_string(path[i].index) + "]";
    } else {
      out += (out.empty() ? "" : ".") + path[i].key;
    }
  }
  return out.empty() ? "the document" : out;
}

struct Parsed {
  json value;
  std::function<std::pair<int, int>(const std::string&)> where; // pointer → line, column
};

Parsed parse(std::string_view text, Format format, const std::string& file) {
  Parsed p;
  if (format == Format::kJson) {
    auto doc = std::make_shared<detail::JsonDoc>(detail::scan_json(text, file));
    p.value = doc->value;
    std::string copy(text);
    p.where = [doc, copy](const std::string& ptr) {
      return detail::position(copy, doc->find(ptr));
    };
    return p;
  }
  try {
    auto doc = std::make_shared<yaml::Document>(yaml::load(text, file));
    p.value = doc->value;
    p.where = [doc](const std::string& ptr) {
      auto m = doc->where.find(ptr);
      return std::make_pair(m.line, m.column);
    };
  } catch (const yaml::Error& e) {
    throw Error(file, e.mark().line, e.mark().column, e.message());
  }
  return p;
}

} // namespace

Result apply(std::string_view text, Format format, const std::vector<Edit>& edits,
             const std::string& file) {
  Result result;
  std::string current(text);
  for (const auto& edit : edits) {
    if (edit.value.is_null() ||
        (edit.value.is_string() && trim(edit.value.get<std::string>()).empty())) {
      result.skipped.push_back(edit.path);
      continue;
    }
    std::vector<PathToken> path;
    try {
      path = parse_path(edit.path);
    } catch (const Error& e) {
      throw Error(file, 0, 0, std::string(e.what()).substr(8)); // drop "<path>: "
    }
    Parsed doc = parse(current, format, file);
    detail::Plan plan;
    plan.path = path;
    const json* node = &doc.value;
    std::size_t i = 0;
    for (; i < path.size(); ++i) {
      const PathToken& t = path[i];
      auto fail = [&](const std::string& why) {
        auto [line, col] = doc.where(plan.pointer());
        throw Error(file, line, col, "cannot set " + edit.path + ": " + why);
      };
      plan.existing = i;
      if (t.is_index()) {
        if (node->is_array()) {
          if (static_cast<std::size_t>(t.index) >= node->size()) {
            fail("index " + std::to_string(t.index) + " is out of range (" + path_prefix(path, i) +
                 " has " + std::to_string(node->size()) + " items)");
          }
          node = &(*node)[static_cast<std::size_t>(t.index)];
          continue;
        }
        fail(path_prefix(path, i) + " is " + describe(*node) + ", not a list");
      }
      if (node->is_object()) {
        auto it = node->find(t.key);
        if (it == node->end()) break;
        node = &*it;
        continue;
      }
      if (node->is_null()) break;
      fail(path_prefix(path, i) + " is " + describe(*node) + ", not a mapping");
    }
    plan.existing = i;
    if (i < path.size()) {
      for (std::size_t j = i; j < path.size(); ++j) {
        if (path[j].is_index()) {
          auto [line, col] = doc.where(plan.pointer());
          throw Error(file, line, col,
                      "cannot set " + edit.path + ": " + path_prefix(path, j) +
                          " does not exist, and list items are never created");
        }
      }
    }
    if (plan.replace() && (node->is_object() || node->is_array()) &&
        !(edit.value.is_object() || edit.value.is_array())) {
      auto [line, col] = doc.where(plan.pointer());
      throw Error(file, line, col,
                  "cannot set " + edit.path + ": it is " + describe(*node) +
                      "; set the keys inside it instead");
    }
    plan.value = typed(plan.replace() ? node : nullptr, edit.value);

    // What the document must read as afterwards.
    json expected = doc.value;
    json* target = &expected;
    for (const auto& t : path) {
      if (t.is_index()) {
        target = &(*target)[static_cast<std::size_t>(t.index)];
      } else {
        if (target->is_null()) *target = json::object();
        target = &(*target)[t.key];
      }
    }
    *target = plan.value;
    if (plan.replace() && *node == plan.value) continue; // already so: leave the text alone

    std::string next = format == Format::kJson ? detail::edit_json(current, plan, file)
                                               : detail::edit_yaml(current, plan, file);
    json reread;
    try {
      reread = parse(next, format, file).value;
    } catch (const Error&) {
      reread = json();
    }
    if (reread != expected) {
      auto [line, col] = doc.where(plan.pointer());
      throw Error(file, line, col,
                  "cannot set " + edit.path +
                      " in place: the change would also alter other values (an anchor with "
                      "aliases, a merge key) or the layout is unusual; edit it by hand");
    }
    current = std::move(next);
    result.applied.push_back(edit.path);
  }
  // The final text must still parse (it did after every edit; this covers no-edit inputs too).
  parse(current, format, file);
  result.changed = current != text;
  result.text = std::move(current);
  return result;
}

} // namespace capstan::configedit
