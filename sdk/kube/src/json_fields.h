// Small readers of Kubernetes objects shared by the rollout rules and the waits.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace capstan::kube::detail {

// The string at a JSON pointer, or "" when it is absent or not a string.
inline std::string string_at(const nlohmann::json& o, const char* pointer) {
  nlohmann::json::json_pointer p(pointer);
  return o.contains(p) && o.at(p).is_string() ? o.at(p).get<std::string>() : std::string();
}

} // namespace capstan::kube::detail
