// <+...> references in files fetched on the delegate (Git and local manifests, values files),
// resolved against the stage's values. The coordinator resolves everything else before the
// task leaves it; here only plain references (<+artifact.image>, <+serviceVariables.replicas>,
// <+pipeline.sequenceId>, ...) can be resolved, since the delegate has no expression engine.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace capstan::plugins::kubernetes {

// Replaces every <+path.to.value> in `text` with the value at that path in `scope` (strings as
// they are, other scalars as JSON). Throws manifest::ManifestError naming `file`, the line and
// column, for a reference that does not resolve or an expression that is not a plain reference.
std::string resolve_references(std::string_view text, const nlohmann::json& scope,
                               const std::string& file);

} // namespace capstan::plugins::kubernetes
