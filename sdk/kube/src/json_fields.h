// The one reader of text fields in the JSON the library handles: API objects, kubeconfigs and
// connector specs.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace capstan::kube::detail {

// A scalar's text: a string as is, a number or boolean as written (`namespace: 123` and
// `insecure: true` in YAML arrive typed, and mean the text, as kubectl reads them into its
// string fields); "" for null, objects and arrays.
inline std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return {};
}

// The text of `o[key]`, or "" when `o` is not an object or the key is absent.
inline std::string text(const nlohmann::json& o, const char* key) {
  if (!o.is_object()) return {};
  auto it = o.find(key);
  return it == o.end() ? std::string() : scalar_text(*it);
}

// The text at a JSON pointer ("/metadata/name"), or "" when it is absent.
inline std::string text_at(const nlohmann::json& o, const nlohmann::json::json_pointer& pointer) {
  return o.contains(pointer) ? scalar_text(o.at(pointer)) : std::string();
}
inline std::string text_at(const nlohmann::json& o, const char* pointer) {
  return text_at(o, nlohmann::json::json_pointer(pointer));
}

} // namespace capstan::kube::detail
