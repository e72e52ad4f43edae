// Failure strategies as Harness writes them (`failureStrategies: [{onFailure: {errors, action}}]`)
// and how the engine picks the one that handles an error.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "model/problem.h"

namespace capstan::model {

namespace action {
inline constexpr const char* kAbort = "Abort";
inline constexpr const char* kIgnore = "Ignore";
inline constexpr const char* kMarkAsSuccess = "MarkAsSuccess";
inline constexpr const char* kMarkAsFailure = "MarkAsFailure";
inline constexpr const char* kRetry = "Retry";
inline constexpr const char* kManualIntervention = "ManualIntervention";
inline constexpr const char* kStageRollback = "StageRollback";
inline constexpr const char* kPipelineRollback = "PipelineRollback";
} // namespace action

// The error types strategies match on (`AllErrors` matches every one).
const std::vector<std::string>& failure_error_types();
// The actions a strategy (or a user resolving a manual intervention) may take.
const std::vector<std::string>& failure_actions();
// The category a step's error type falls in for matching: the plugin boundary's InvalidInput and
// anything unnamed are Unknown.
std::string failure_category(const std::string& error_type);

struct FailureAction {
  std::string type; // one of failure_actions()
  // Retry
  int retry_count = 0;
  std::vector<std::chrono::milliseconds> retry_intervals; // the last one repeats
  // ManualIntervention
  std::chrono::milliseconds timeout{0};
  // Retry: onRetryFailure; ManualIntervention: onTimeout. Zero or one entry.
  std::vector<FailureAction> then;

  // The wait before retry number `n` (1-based).
  std::chrono::milliseconds retry_interval(int n) const;
};

struct FailureStrategy {
  std::vector<std::string> errors;
  FailureAction action;
  std::string location; // "file:line:column" of the strategy
};

// Reads `failureStrategies` of the mapping at `pointer` (absent: empty).
std::vector<FailureStrategy> parse_failure_strategies(const nlohmann::json& owner,
                                                      const std::string& pointer, Checker& check);

// The strategy a Deployment stage has when nothing else matches: roll the stage back.
FailureStrategy default_deployment_strategy();

// The strategy that handles `error_type`. `levels` go from the innermost (the step) outwards
// (step groups, then the stage); the first level with a match wins, and within a level a
// strategy naming the error type beats one that names AllErrors. nullopt: nothing matches, and
// the failure propagates (the stage fails).
struct Resolution {
  FailureAction action;
  std::string location; // where the chosen strategy is written
};
std::optional<Resolution>
resolve_failure(const std::vector<const std::vector<FailureStrategy>*>& levels,
                const std::string& error_type);

void to_json(nlohmann::json& j, const FailureAction& a);
void from_json(const nlohmann::json& j, FailureAction& a);
void to_json(nlohmann::json& j, const FailureStrategy& s);
void from_json(const nlohmann::json& j, FailureStrategy& s);

} // namespace capstan::model
