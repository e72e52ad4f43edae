// Apply-time checks of <+env...> in a stage that deploys to an environment group: such a stage
// has no single environment (Harness produces none for a GitOps stage over several), so <+env...>
// is read only where the step resolves it per GitOps cluster (UpdateReleaseRepo's variables, as
// whole expressions).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "model/problem.h"
#include "model/variables.h"

namespace capstan::model {

// Pipeline variable name -> the <+env...> path its value reads ("env.name"), directly or through
// other pipeline variables. Such a variable is resolved where it is used, so over an environment
// group it reads <+env...> where there is no single environment.
using EnvVariables = std::map<std::string, std::string>;
EnvVariables env_reading_variables(const std::vector<Variable>& pipeline_variables);

// The first <+env...> path `text` reads ("env.name"), or "" when it reads none (or does not
// parse: its syntax is checked elsewhere). A pipeline variable of `through` that reads one counts
// as "pipeline.variables.NAME". `condition`: `text` is a condition, not a template.
std::string env_reference(const std::string& text, bool condition = false,
                          const EnvVariables& through = {});

// Records a problem at each string of `value` (at `pointer`) that reads <+env...>, directly or
// through a pipeline variable of `through`.
void check_no_env(const nlohmann::json& value, const std::string& pointer, Checker& check,
                  bool condition = false, const EnvVariables& through = {});

// UpdateReleaseRepo's variables: <+env.name>, <+env.identifier>, <+env.type> and
// <+env.variables.NAME> are resolved per cluster, only as whole expressions.
void check_env_per_cluster(const nlohmann::json& value, const std::string& pointer, Checker& check);

} // namespace capstan::model
