// The pipeline model: Harness-shaped YAML validated into stages and steps, and back to JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "capstan/yaml/yaml.h"
#include "model/problem.h"

namespace capstan::model {

inline constexpr std::chrono::milliseconds kDefaultStepTimeout = std::chrono::minutes(10);

struct Variable {
  std::string name;
  std::string type = "String";
  std::string value;          // the literal, or the runtime input marker as written
  bool runtime_input = false; // `<+input>...`: given at run time (--set)
  std::string description;
};

struct Step {
  std::string identifier;
  std::string name;
  std::string type;
  std::string description;
  std::chrono::milliseconds timeout = kDefaultStepTimeout;
  nlohmann::json spec = nlohmann::json::object();
  std::vector<std::string> delegate_selectors; // as declared on the step (see selectors.h)
  std::string location;                        // "file:line:column" of the step, for messages
  // For strings of `spec` holding expressions: pointer within spec -> "file:line:column".
  std::map<std::string, std::string> expression_locations;
};

struct Stage {
  std::string identifier;
  std::string name;
  std::string type; // Custom | Deployment
  std::string description;
  std::vector<Step> steps;
  std::vector<std::string> delegate_selectors; // as declared on the stage
  std::string location;
};

struct Pipeline {
  std::string identifier;
  std::string name;
  std::string description;
  std::vector<Variable> variables;
  std::vector<Stage> stages;
  std::vector<std::string> delegate_selectors; // as declared on the pipeline
};

// Validates the document's `pipeline:` mapping (the whole document is `doc`); problems name
// file:line:column. Step types are checked by the caller against what delegates provide.
Pipeline parse_pipeline(const nlohmann::json& doc, const yaml::SourceMap& where,
                        std::vector<Problem>& problems);

// The stored form (an execution keeps the pipeline as it was when it started).
nlohmann::json to_json(const Pipeline& pipeline);
Pipeline pipeline_from_json(const nlohmann::json& j);

// The variables of one run: declared values, overridden by `set`. Throws ValidationError for a
// name the pipeline does not declare or a runtime input left without a value.
std::map<std::string, std::string> bind_variables(const Pipeline& pipeline,
                                                  const std::map<std::string, std::string>& set);

} // namespace capstan::model
