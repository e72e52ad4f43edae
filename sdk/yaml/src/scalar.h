// How a plain (unquoted) YAML scalar is typed under the YAML 1.2 core schema.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

namespace capstan::yaml::detail {

bool is_null_word(std::string_view s);
std::optional<bool> as_bool_word(std::string_view s);
std::optional<nlohmann::json> as_int(std::string_view s);
std::optional<nlohmann::json> as_float(std::string_view s);
// True when the plain scalar s reads back as the string s.
inline bool plain_is_string(std::string_view s) {
  return !is_null_word(s) && !as_bool_word(s) && !as_int(s) && !as_float(s);
}

} // namespace capstan::yaml::detail
