// The pipeline model: Harness-shaped YAML validated into stages, step groups, parallel blocks
// and steps, with failure strategies and `when` conditions, and back to JSON (the stored form an
// execution keeps).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "capstan/yaml/yaml.h"
#include "model/failure.h"
#include "model/problem.h"
#include "model/variables.h"

namespace capstan::model {

inline constexpr std::chrono::milliseconds kDefaultStepTimeout = std::chrono::minutes(10);
// Harness approvals wait a day unless told otherwise.
inline constexpr std::chrono::milliseconds kDefaultApprovalTimeout = std::chrono::hours(24);

// `when`: on a stage `pipelineStatus`, on a step or step group `stageStatus`; Success (the
// default: run while everything before succeeded), Failure (only after a failure) or All.
struct When {
  std::string status = "Success";
  std::string condition; // a JEXL condition, "" for none
  std::string location;  // of the condition (or the `when` block)
};

enum class NodeKind { kStep, kStepGroup, kParallel };
const char* node_kind_name(NodeKind kind); // "Step", "StepGroup", "Parallel"

// One entry of `steps` / `rollbackSteps`: a step, a step group or a parallel block.
struct Node {
  NodeKind kind = NodeKind::kStep;
  std::string identifier; // parallel blocks have none
  std::string name;
  std::string type; // steps: the step type
  std::string description;
  std::chrono::milliseconds timeout{0}; // steps: their timeout (a default when unset)
  nlohmann::json spec = nlohmann::json::object();
  std::optional<When> when;
  std::vector<FailureStrategy> failure_strategies;
  std::vector<std::string> delegate_selectors; // as written; precedence is the scheduler's
  std::vector<Node> children;                  // a group's steps, a parallel block's entries
  std::vector<Node> rollback;                  // a group's rollbackSteps
  std::string location;      // "file:line:column" of the step / stepGroup / parallel
  std::string type_location; // of the step's `type`
  // For strings of `spec` holding expressions: pointer within spec -> "file:line:column".
  std::map<std::string, std::string> expression_locations;
  // Where the step's `spec` is in the applied document (a JSON pointer; empty without a spec).
  // Only known right after parsing: it is not stored.
  std::string spec_pointer;
};

struct StageEnvironment {
  std::string environment_ref;
  bool deploy_to_all = false;
  std::vector<std::string> infrastructure_refs;
  std::vector<std::string> gitops_clusters; // `gitOpsClusters: [{identifier}]`
  nlohmann::json environment_inputs = nlohmann::json::object();
  // infrastructure identifier -> its `inputs`
  nlohmann::json infrastructure_inputs = nlohmann::json::object();
  std::string location;
};

// `spec.environmentGroup` of a GitOps stage: the group, and either all its environments (with
// all their clusters) or the listed ones, each picking clusters like `spec.environment` does.
struct StageEnvironmentGroup {
  std::string env_group_ref;
  bool deploy_to_all = false;
  std::vector<StageEnvironment> environments;
  std::string location;
};

struct Stage {
  std::string identifier;
  std::string name;
  std::string type; // Custom | Deployment
  std::string description;
  std::string deployment_type; // Deployment stages: Kubernetes
  bool gitops = false;         // spec.gitOpsEnabled
  std::vector<Variable> variables;
  std::optional<When> when;
  std::vector<FailureStrategy> failure_strategies;
  std::vector<std::string> delegate_selectors;
  // Deployment stages
  std::string service_ref; // may be a runtime input until the run binds it
  nlohmann::json service_inputs = nlohmann::json::object();
  std::optional<StageEnvironment> environment;
  std::optional<StageEnvironmentGroup> environment_group; // GitOps stages, instead of environment
  std::vector<Node> steps;
  std::vector<Node> rollback_steps;
  // Stages written in the same `parallel` block share a group; others have a group of their own.
  int parallel_group = 0;
  std::string location;
};

struct Pipeline {
  std::string identifier;
  std::string name;
  std::string description;
  std::vector<Variable> variables;
  std::vector<std::string> delegate_selectors;
  std::vector<Stage> stages;
};

// Validates the document's `pipeline:` mapping (the whole document is `doc`); problems name
// file:line:column. Step types are checked by the caller against what delegates provide.
Pipeline parse_pipeline(const nlohmann::json& doc, const yaml::SourceMap& where,
                        std::vector<Problem>& problems);

// Every step of a stage (inside groups and parallel blocks too) in document order, with its
// `steps` / `rollbackSteps` section; for step type checks.
void for_each_step(const std::vector<Node>& nodes, const std::function<void(const Node&)>& fn);

// The stored form (an execution keeps the pipeline as it was when it started).
nlohmann::json to_json(const Pipeline& pipeline);
Pipeline pipeline_from_json(const nlohmann::json& j);
void to_json(nlohmann::json& j, const Node& n);
void from_json(const nlohmann::json& j, Node& n);
void to_json(nlohmann::json& j, const When& w);
void from_json(const nlohmann::json& j, When& w);

// The variables of one run: declared values, overridden by `set`. Throws ValidationError for a
// name the pipeline does not declare or a runtime input left without a value.
std::map<std::string, std::string> bind_variables(const Pipeline& pipeline,
                                                  const std::map<std::string, std::string>& set);

} // namespace capstan::model
