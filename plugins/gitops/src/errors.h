// Failures of the Git, SCM, config-edit and YAML libraries as step failures with the error types
// failure strategies match on, their messages scrubbed of credential values.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace capstan::plugins::gitops {

// Runs f; any library exception becomes sdk::StepError (or sdk::Cancelled) whose message starts
// with `what` and never contains one of `secrets`.
void translate_errors(const std::string& what, const std::vector<std::string>& secrets,
                      const std::function<void()>& f);

// `text` with every secret value replaced by "**********".
std::string scrub(std::string text, const std::vector<std::string>& secrets);

} // namespace capstan::plugins::gitops
