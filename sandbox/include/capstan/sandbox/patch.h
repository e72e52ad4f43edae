// The patch formats of the Kubernetes API: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
// and strategic merge patch (merge keys, $patch, $retainKeys, $setElementOrder,
// $deleteFromPrimitiveList). Errors are ApiError (422 for a patch that does not apply).
#pragma once

#include "capstan/sandbox/schema.h"

#include <nlohmann/json.hpp>

namespace capstan::sandbox {

nlohmann::json apply_merge_patch(const nlohmann::json& target, const nlohmann::json& patch);
nlohmann::json apply_json_patch(const nlohmann::json& target, const nlohmann::json& patch);
// schema may be null: every list is then replaced, as for types without patch metadata.
nlohmann::json apply_strategic_merge_patch(const nlohmann::json& target,
                                           const nlohmann::json& patch, const Schema* schema);

} // namespace capstan::sandbox
