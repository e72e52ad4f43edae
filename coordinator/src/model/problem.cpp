// Validation problems and the field reader that records them.
#include "model/problem.h"

#include <algorithm>

#include "model/duration.h"

namespace capstan::model {

namespace {
std::string summarize(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += "\n";
    out += p.text();
  }
  return out;
}
} // namespace

ValidationError::ValidationError(std::vector<Problem> problems)
    : std::runtime_error(summarize(problems)), problems_(std::move(problems)) {}

const char* type_name(const nlohmann::json& value) {
  switch (value.type()) {
  case nlohmann::json::value_t::null:
    return "null";
  case nlohmann::json::value_t::object:
    return "a mapping";
  case nlohmann::json::value_t::array:
    return "a list";
  case nlohmann::json::value_t::string:
    return "a string";
  case nlohmann::json::value_t::boolean:
    return "a boolean";
  default:
    return "a number";
  }
}

void Checker::error(const std::string& pointer, std::string message) {
  problems_.push_back(Problem{where_.locate(pointer), std::move(message)});
}

const nlohmann::json* Checker::member(const nlohmann::json& object, const std::string& pointer,
                                      const std::string& key, bool required) {
  if (object.is_object()) {
    auto it = object.find(key);
    if (it != object.end() && !it->is_null()) return &*it;
  }
  if (required) error(pointer, "missing required field '" + key + "'");
  return nullptr;
}

std::string Checker::string(const nlohmann::json& object, const std::string& pointer,
                            const std::string& key, bool required) {
  const auto* v = member(object, pointer, key, required);
  if (v == nullptr) return {};
  auto at = yaml::pointer_append(pointer, key);
  if (!v->is_string()) {
    error(at, "'" + key + "' must be a string, not " + type_name(*v));
    return {};
  }
  if (required && v->get_ref<const std::string&>().empty()) {
    error(at, "'" + key + "' must not be empty");
  }
  return v->get<std::string>();
}

const nlohmann::json* Checker::object(const nlohmann::json& obj, const std::string& pointer,
                                      const std::string& key, bool required) {
  const auto* v = member(obj, pointer, key, required);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    error(yaml::pointer_append(pointer, key),
          "'" + key + "' must be a mapping, not " + type_name(*v));
    return nullptr;
  }
  return v;
}

const nlohmann::json* Checker::array(const nlohmann::json& obj, const std::string& pointer,
                                     const std::string& key, bool required) {
  const auto* v = member(obj, pointer, key, required);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    error(yaml::pointer_append(pointer, key), "'" + key + "' must be a list, not " + type_name(*v));
    return nullptr;
  }
  return v;
}

void Checker::only(const nlohmann::json& obj, const std::string& pointer,
                   const std::vector<std::string>& known, const std::vector<std::string>& later) {
  if (!obj.is_object()) return;
  for (const auto& [key, value] : obj.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    auto at = yaml::pointer_append(pointer, key);
    if (std::find(later.begin(), later.end(), key) != later.end()) {
      error(at, "'" + key + "' is not supported by this version of Capstan yet");
      continue;
    }
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    error(at, "unknown field '" + key + "' (expected one of: " + list + ")");
  }
}

bool Checker::identifier(const std::string& value, const std::string& pointer, bool allow_dash) {
  bool ok = !value.empty() && value.size() <= 128 &&
            (std::isalpha(static_cast<unsigned char>(value[0])) || value[0] == '_');
  for (char c : value) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (allow_dash && c == '-'))) {
      ok = false;
    }
  }
  if (!ok) {
    error(pointer, "invalid identifier '" + value + "': use a letter or '_' followed by letters, " +
                       (allow_dash ? "digits, '_' or '-'" : "digits or '_'") + " (at most 128)");
  }
  return ok;
}

std::optional<bool> Checker::boolean(const nlohmann::json& object, const std::string& pointer,
                                     const std::string& key) {
  const auto* v = member(object, pointer, key, false);
  if (v == nullptr) return std::nullopt;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_string() && (*v == "true" || *v == "false")) return *v == "true";
  error(yaml::pointer_append(pointer, key),
        "'" + key + "' must be true or false, not " + type_name(*v));
  return std::nullopt;
}

std::vector<std::string> Checker::strings(const nlohmann::json& object, const std::string& pointer,
                                          const std::string& key, bool required) {
  std::vector<std::string> out;
  const auto* list = array(object, pointer, key, required);
  if (list == nullptr) return out;
  auto at = yaml::pointer_append(pointer, key);
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto& item = (*list)[i];
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
      error(yaml::pointer_append(at, i),
            "each entry of '" + key + "' must be a non-empty string, not " +
                (item.is_string() ? std::string("an empty string") : type_name(item)));
      continue;
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::string Checker::one_of(const nlohmann::json& object, const std::string& pointer,
                            const std::string& key, const std::vector<std::string>& allowed,
                            bool required) {
  std::string value = string(object, pointer, key, required);
  if (value.empty()) return value;
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return value;
  error(yaml::pointer_append(pointer, key),
        "unknown " + key + " '" + value + "' (expected " + join_names(allowed) + ")");
  return {};
}

std::optional<std::chrono::milliseconds> Checker::duration(const nlohmann::json& object,
                                                           const std::string& pointer,
                                                           const std::string& key, bool required) {
  const auto* v = member(object, pointer, key, required);
  if (v == nullptr) return std::nullopt;
  auto at = yaml::pointer_append(pointer, key);
  if (!v->is_string()) {
    error(at, "'" + key + "' must be a duration such as \"10m\" or \"1h 30m\"");
    return std::nullopt;
  }
  if (auto d = parse_duration(v->get<std::string>())) return d;
  error(at, "invalid " + key + " '" + v->get<std::string>() +
                "': use a duration such as \"30s\", \"10m\" or \"1h 30m\" "
                "(units w, d, h, m, s, ms)");
  return std::nullopt;
}

std::string strip_scope(const std::string& ref) {
  for (const char* scope : {"account.", "org."}) {
    if (ref.rfind(scope, 0) == 0) return ref.substr(std::string(scope).size());
  }
  return ref;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

} // namespace capstan::model
