// Parts of the service model that environments reuse for their overrides.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "model/object.h"

namespace capstan::model {

// A manifest's or config file's `store` under the mapping at `at`.
void parse_store(const nlohmann::json& owner, const std::string& at, Checker& check, Object& out,
                 const std::string& role);
// `manifests: [{manifest: {identifier, type, spec}}]` of the mapping at `at`.
nlohmann::json parse_manifests(const nlohmann::json& owner, const std::string& at, Checker& check,
                               Object& out, const std::string& owner_role);

} // namespace capstan::model
