// The GitOps steps the coordinator runs itself (GitOpsSync, UpdateGitOpsApp): they act on the
// coordinator's own Applications through the delegates that hold them. Their spec schemas, as a
// delegate would announce them for its plugins' steps, so `capstan apply` checks them the same
// way (file:line:column of every fault).
#pragma once

#include <string>
#include <string_view>

#include "model/problem.h"

namespace capstan::model {

// The JSON Schema (text) of a coordinator-run step type's spec; "" when it has none.
const std::string& coordinator_step_schema(std::string_view type);

// What a schema cannot say: a regex that does not compile, a duration that is not one, both or
// neither of applicationsList and applicationRegex. Values holding expressions are checked when
// the step runs.
void check_gitops_sync_spec(const nlohmann::json& spec, const std::string& at, Checker& check);

} // namespace capstan::model
