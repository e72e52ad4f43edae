// Values files: parsed as YAML maps and layered, later layers taking precedence.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace capstan::manifest {

// One layer of values: a file's text and the name errors use for it.
struct ValuesFile {
  std::string name; // e.g. "values/prod.yaml" or "environment prod override"
  std::string text;
};

// A values document: an empty text is {}; anything but a map at the top is an error naming
// the file, as is a second document. <+...> expressions must already be resolved.
nlohmann::json parse_values(std::string_view text, const std::string& name);

// Deep merge of `overlay` onto `base`: maps merge key by key, anything else (lists included)
// replaces, and a null in the overlay deletes the key, as Helm does.
void merge_values(nlohmann::json& base, const nlohmann::json& overlay);

// Parses and merges the layers in order; the last one wins.
nlohmann::json merge_values_files(const std::vector<ValuesFile>& layers);

} // namespace capstan::manifest
