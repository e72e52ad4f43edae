// Apply-time checks of the expressions in pipeline fields: syntax, and whether what they refer
// to exists at the point where the field is evaluated (a step may read only steps that ran
// before it, a Custom stage has no service, ...).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "model/problem.h"

namespace capstan::model {

// What a field may refer to where it is evaluated.
struct ExpressionContext {
  std::set<std::string> pipeline_variables;
  // Pipeline variables that read <+env...> -> the path read (model/env_group_check.h).
  std::map<std::string, std::string> env_variables;
  std::set<std::string> all_stages;
  // Stage identifier -> step paths ("x", "group.x") that end before the field is evaluated,
  // for the stages that ran before and for the current one.
  std::map<std::string, std::set<std::string>> earlier_steps;
  // Stage identifier -> its variables.
  std::map<std::string, std::set<std::string>> stage_variables;
  std::string current_stage;
  bool in_stage = false;   // stage.* is available
  bool in_step = false;    // step.* is available
  bool deployment = false; // service.*, env.*, infra.*, artifact.* are available
  // cluster.* and envgroup.* are available, left for the step to resolve per GitOps cluster
  // (UpdateReleaseRepo's variables).
  bool per_cluster = false;
  // The stage deploys to an environment group: it has no single environment (see
  // model/env_group_check.h).
  bool env_group = false;
};

// Why `path` ("pipeline.variables.x") cannot be resolved in `context`; nullopt when it can.
std::optional<std::string> check_path(const std::string& path, const ExpressionContext& context);

// Checks one field value: a runtime input marker (accepted as is: bound when the run starts),
// or text with expressions (parsed and every reference checked). Records a problem at `pointer`
// and returns false when something is wrong; true otherwise (also for plain text).
bool check_field(const std::string& value, const std::string& pointer,
                 const ExpressionContext& context, Checker& check, bool condition = false);

// Checks every string of `value` (a step's spec); records where each expression is.
void check_tree(const nlohmann::json& value, const std::string& pointer, const std::string& rel,
                const ExpressionContext& context, Checker& check,
                std::map<std::string, std::string>& locations);

// Expressions in objects that many pipelines use (services, environments, infrastructures):
// syntax and the first name only, since what they refer to depends on the pipeline.
void check_object_tree(const nlohmann::json& value, const std::string& pointer, Checker& check,
                       std::map<std::string, std::string>& locations);

// The names an expression may start with.
const std::set<std::string>& expression_roots();
// Roots left as written when the coordinator resolves a service for a step, for the plugin to
// resolve itself (per GitOps cluster: <+cluster.name>, <+envgroup.name>).
const std::set<std::string>& deferred_roots();

} // namespace capstan::model
