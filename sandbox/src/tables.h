// meta.k8s.io/v1 Table responses: the columns `kubectl get` prints for each kind.
#pragma once

#include "capstan/sandbox/resources.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace capstan::sandbox {

// include_object: "None", "Metadata" (default) or "Object".
nlohmann::json make_table(const ResourceType& t, const std::vector<nlohmann::json>& objects,
                          const std::string& include_object, const nlohmann::json& list_meta);
// "5m3s", "2d" (the API server's human duration).
std::string human_age(const std::string& rfc3339_time);

} // namespace capstan::sandbox
