// Per-kind defaulting and validation, following the upstream API types' strategies.
#pragma once

#include "capstan/sandbox/api_error.h"
#include "capstan/sandbox/resources.h"

#include <nlohmann/json.hpp>

#include <vector>

namespace capstan::sandbox {

// Server-filled defaults (what `kubectl get -o yaml` shows that the manifest did not say).
void apply_defaults(const ResourceType& t, nlohmann::json& object);
// Problems with the object (old is the previous state on update, else null).
std::vector<StatusCause> validate_object(const ResourceType& t, const nlohmann::json& object,
                                         const nlohmann::json* old);
bool tracks_generation(const ResourceType& t);
// Creation-only preparation: allocated IPs, initial status.
void prepare_new(const ResourceType& t, nlohmann::json& object);

} // namespace capstan::sandbox
