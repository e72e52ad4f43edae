// Discovery documents (/version, /api, /apis, API resource lists) and OpenAPI v3.
#pragma once

#include "capstan/sandbox/resources.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace capstan::sandbox {

nlohmann::json version_info();
nlohmann::json api_versions(const std::string& server_address);
nlohmann::json api_group_list(const Registry& registry);
std::optional<nlohmann::json> api_group(const Registry& registry, const std::string& group);
std::optional<nlohmann::json> api_resource_list(const Registry& registry, const std::string& group,
                                                const std::string& version);
// /openapi/v3: the index of group-version documents.
nlohmann::json openapi_index(const Registry& registry);
// /openapi/v3/api/v1, /openapi/v3/apis/<g>/<v>
std::optional<nlohmann::json> openapi_document(const Registry& registry, const std::string& group,
                                               const std::string& version);

} // namespace capstan::sandbox
