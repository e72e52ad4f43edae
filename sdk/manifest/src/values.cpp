// Values layering.
#include "capstan/manifest/values.h"

#include "capstan/manifest/error.h"
#include "capstan/yaml/yaml.h"

namespace capstan::manifest {

nlohmann::json parse_values(std::string_view text, const std::string& name) {
  std::vector<yaml::Document> docs;
  try {
    docs = yaml::load_all(text, name);
  } catch (const yaml::Error& e) {
    throw ManifestError(e.file(), e.mark().line, e.mark().column, e.message());
  }
  nlohmann::json out = nlohmann::json::object();
  bool seen = false;
  for (auto& doc : docs) {
    if (doc.value.is_null()) continue;
    if (seen) {
      throw ManifestError(name, doc.start.line, doc.start.column,
                          "a values file holds one YAML document; found another here");
    }
    seen = true;
    if (!doc.value.is_object()) {
      const char* what = doc.value.is_array() ? "a list" : "a scalar";
      throw ManifestError(name, doc.start.line, doc.start.column,
                          std::string("values must be a map of keys at the top level, not ") +
                              what);
    }
    out = std::move(doc.value);
  }
  return out;
}

void merge_values(nlohmann::json& base, const nlohmann::json& overlay) {
  if (!overlay.is_object() || !base.is_object()) {
    base = overlay;
    return;
  }
  for (const auto& [key, value] : overlay.items()) {
    if (value.is_null()) {
      base.erase(key);
      continue;
    }
    auto it = base.find(key);
    if (it != base.end() && it->is_object() && value.is_object()) {
      merge_values(*it, value);
    } else {
      base[key] = value;
    }
  }
}

nlohmann::json merge_values_files(const std::vector<ValuesFile>& layers) {
  nlohmann::json merged = nlohmann::json::object();
  for (const auto& layer : layers) merge_values(merged, parse_values(layer.text, layer.name));
  return merged;
}

} // namespace capstan::manifest
