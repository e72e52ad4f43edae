// Apply-time checks of <+env...> in a stage that deploys to an environment group: such a stage
// has no single environment (Harness produces none for a GitOps stage over several), so <+env...>
// is read only where the step resolves it per GitOps cluster (UpdateReleaseRepo's variables, as
// whole expressions).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "model/problem.h"

namespace capstan::model {

// The first <+env...> path `text` reads ("env.name"), or "" when it reads none (or does not
// parse: its syntax is checked elsewhere). `condition`: `text` is a condition, not a template.
std::string env_reference(const std::string& text, bool condition = false);

// Records a problem at each string of `value` (at `pointer`) that reads <+env...>.
void check_no_env(const nlohmann::json& value, const std::string& pointer, Checker& check,
                  bool condition = false);

// UpdateReleaseRepo's variables: <+env.name>, <+env.identifier>, <+env.type> and
// <+env.variables.NAME> are resolved per cluster, only as whole expressions.
void check_env_per_cluster(const nlohmann::json& value, const std::string& pointer, Checker& check);

} // namespace capstan::model
