// Typed reads of document fields with errors naming the field's file:line:column.
#include "fields.h"

namespace capstan::apps::detail {

using nlohmann::json;

namespace {
const json& null_json() {
  static const json kNull;
  return kNull;
}
const json& empty_object() {
  static const json kEmpty = json::object();
  return kEmpty;
}
std::string type_name(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "a mapping";
  return "null";
}
} // namespace

Fields::Fields(const json& value, const yaml::SourceMap& where, std::string pointer,
               std::string display)
    : value_(value), where_(where), pointer_(std::move(pointer)), display_(std::move(display)) {
  if (!value_.is_object() && !value_.is_null()) {
    fail_here(display_ + " must be a mapping, not " + type_name(value_));
  }
}

bool Fields::has(std::string_view key) const {
  return value_.is_object() && value_.contains(key) && !value_.at(std::string(key)).is_null();
}

const json& Fields::child(std::string_view key) const {
  if (!value_.is_object()) return null_json();
  auto it = value_.find(std::string(key));
  return it == value_.end() ? null_json() : *it;
}

std::string Fields::child_display(std::string_view key) const {
  return display_.empty() ? std::string(key) : display_ + "." + std::string(key);
}

std::string Fields::locate(std::string_view key) const {
  std::string pointer = key.empty() ? pointer_ : yaml::pointer_append(pointer_, key);
  if (where_.file().empty() && !where_.find(pointer).known()) return "";
  return where_.locate(pointer);
}

void Fields::fail(std::string_view key, const std::string& message) const {
  throw Error(locate(key), message);
}

void Fields::fail_here(const std::string& message) const {
  throw Error(locate(""), message);
}

void Fields::only(std::initializer_list<std::string_view> known) const {
  if (!value_.is_object()) return;
  for (const auto& [key, _] : value_.items()) {
    bool ok = false;
    for (auto k : known) ok = ok || k == key;
    if (ok) continue;
    std::string list;
    for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    fail(key, "unknown field " + child_display(key) + " (known here: " + list + ")");
  }
}

std::string Fields::string(std::string_view key, const std::string& fallback) const {
  const json& v = child(key);
  if (v.is_null()) return fallback;
  if (v.is_string()) return v.get<std::string>();
  // Argo CD's fields are strings; numbers written without quotes (a revision "1.0") read as
  // YAML numbers but mean the text.
  if (v.is_number() || v.is_boolean()) return v.dump();
  fail(key, child_display(key) + " must be a string, not " + type_name(v));
}

std::string Fields::required_string(std::string_view key) const {
  std::string s = string(key);
  if (s.empty()) {
    if (has(key)) fail(key, child_display(key) + " must not be empty");
    fail_here(child_display(key) + " is required");
  }
  return s;
}

bool Fields::boolean(std::string_view key, bool fallback) const {
  const json& v = child(key);
  if (v.is_null()) return fallback;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string() && (v == "true" || v == "false")) return v == "true";
  fail(key, child_display(key) + " must be true or false, not " + v.dump());
}

long long Fields::integer(std::string_view key, long long fallback) const {
  const json& v = child(key);
  if (v.is_null()) return fallback;
  if (v.is_number_integer()) return v.get<long long>();
  fail(key, child_display(key) + " must be an integer, not " + v.dump());
}

Fields Fields::object(std::string_view key) const {
  const json& v = child(key);
  return Fields(v.is_null() ? empty_object() : v, where_, yaml::pointer_append(pointer_, key),
                child_display(key));
}

std::vector<Fields> Fields::objects(std::string_view key) const {
  const json& v = child(key);
  std::vector<Fields> out;
  if (v.is_null()) return out;
  if (!v.is_array()) fail(key, child_display(key) + " must be a list, not " + type_name(v));
  std::string base = yaml::pointer_append(pointer_, key);
  for (std::size_t i = 0; i < v.size(); ++i) {
    out.emplace_back(v[i], where_, yaml::pointer_append(base, i),
                     child_display(key) + "[" + std::to_string(i) + "]");
  }
  return out;
}

std::vector<std::string> Fields::strings(std::string_view key) const {
  const json& v = child(key);
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (!v.is_array()) fail(key, child_display(key) + " must be a list, not " + type_name(v));
  std::string base = yaml::pointer_append(pointer_, key);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) {
      throw Error(where_.locate(yaml::pointer_append(base, i)),
                  child_display(key) + "[" + std::to_string(i) + "] must be a string, not " +
                      type_name(v[i]));
    }
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> Fields::string_map(std::string_view key) const {
  Fields m = object(key);
  std::map<std::string, std::string> out;
  if (!m.value().is_object()) return out;
  for (const auto& [k, _] : m.value().items()) out[k] = m.string(k);
  return out;
}

} // namespace capstan::apps::detail
