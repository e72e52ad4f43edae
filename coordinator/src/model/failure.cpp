// Failure strategies: parsing and resolution.
#include "model/failure.h"

#include <algorithm>
#include <map>

#include "model/duration.h"

namespace capstan::model {

using nlohmann::json;
using yaml::pointer_append;

const std::vector<std::string>& failure_error_types() {
  static const std::vector<std::string> types = {
      "AllErrors",         "Authentication",       "Authorization", "Connectivity",
      "Timeout",           "DelegateProvisioning", "Verification",  "PolicyEvaluationFailure",
      "InputTimeoutError", "ApprovalRejection",    "Unknown"};
  return types;
}

const std::vector<std::string>& failure_actions() {
  static const std::vector<std::string> actions = {
      action::kAbort,         action::kIgnore,          action::kMarkAsSuccess,
      action::kMarkAsFailure, action::kRetry,           action::kManualIntervention,
      action::kStageRollback, action::kPipelineRollback};
  return actions;
}

std::string failure_category(const std::string& error_type) {
  const auto& known = failure_error_types();
  if (error_type.empty() || error_type == "AllErrors" ||
      std::find(known.begin(), known.end(), error_type) == known.end()) {
    return "Unknown";
  }
  return error_type;
}

std::chrono::milliseconds FailureAction::retry_interval(int n) const {
  if (retry_intervals.empty()) return std::chrono::milliseconds(0);
  auto i = static_cast<std::size_t>(std::max(1, n) - 1);
  return retry_intervals[std::min(i, retry_intervals.size() - 1)];
}

namespace {

// nesting: "" at the top, "Retry" inside onRetryFailure, "ManualIntervention" inside onTimeout.
FailureAction parse_action(const json& owner, const std::string& pointer, Checker& check,
                           const std::string& nesting) {
  FailureAction a;
  const auto* body = check.object(owner, pointer, "action", true);
  if (body == nullptr) return a;
  auto at = pointer_append(pointer, "action");
  check.only(*body, at, {"type", "spec"});
  a.type = check.one_of(*body, at, "type", failure_actions(), true);
  if (a.type.empty()) return a;
  auto tat = pointer_append(at, "type");
  if (nesting == action::kRetry && a.type == action::kRetry) {
    check.error(tat, "onRetryFailure cannot retry again: pick Abort, Ignore, MarkAsSuccess, "
                     "MarkAsFailure, ManualIntervention, StageRollback or PipelineRollback");
    return a;
  }
  if (nesting == action::kManualIntervention &&
      (a.type == action::kRetry || a.type == action::kManualIntervention)) {
    check.error(tat, "onTimeout of a manual intervention must end the wait: pick Abort, Ignore, "
                     "MarkAsSuccess, MarkAsFailure, StageRollback or PipelineRollback");
    return a;
  }
  const auto* spec = check.member(*body, at, "spec", false);
  auto sat = pointer_append(at, "spec");
  if (a.type == action::kRetry) {
    if (spec == nullptr || !spec->is_object()) {
      check.error(at, "a Retry action needs spec.retryCount and spec.retryIntervals");
      return a;
    }
    check.only(*spec, sat, {"retryCount", "retryIntervals", "onRetryFailure"});
    const auto* count = check.member(*spec, sat, "retryCount", true);
    if (count != nullptr) {
      if (!count->is_number_integer() || count->get<std::int64_t>() < 1 ||
          count->get<std::int64_t>() > 100) {
        check.error(pointer_append(sat, "retryCount"), "retryCount must be a whole number from 1 "
                                                       "to 100");
      } else {
        a.retry_count = count->get<int>();
      }
    }
    auto intervals = check.strings(*spec, sat, "retryIntervals", true);
    for (std::size_t i = 0; i < intervals.size(); ++i) {
      if (auto d = parse_duration(intervals[i])) {
        a.retry_intervals.push_back(*d);
      } else {
        check.error(pointer_append(pointer_append(sat, "retryIntervals"), i),
                    "invalid retry interval '" + intervals[i] + "' (use a duration such as 10s)");
      }
    }
    if (const auto* next = check.object(*spec, sat, "onRetryFailure", true)) {
      a.then.push_back(
          parse_action(*next, pointer_append(sat, "onRetryFailure"), check, action::kRetry));
    }
  } else if (a.type == action::kManualIntervention) {
    if (spec == nullptr || !spec->is_object()) {
      check.error(at, "a ManualIntervention action needs spec.timeout and spec.onTimeout");
      return a;
    }
    check.only(*spec, sat, {"timeout", "onTimeout"});
    if (auto d = check.duration(*spec, sat, "timeout", true)) a.timeout = *d;
    if (const auto* next = check.object(*spec, sat, "onTimeout", true)) {
      a.then.push_back(parse_action(*next, pointer_append(sat, "onTimeout"), check,
                                    action::kManualIntervention));
    }
  } else if (spec != nullptr && !(spec->is_object() && spec->empty())) {
    check.error(sat, "a " + a.type + " action takes no spec");
  }
  return a;
}

} // namespace

std::vector<FailureStrategy> parse_failure_strategies(const json& owner, const std::string& pointer,
                                                      Checker& check) {
  std::vector<FailureStrategy> out;
  const auto* list = check.array(owner, pointer, "failureStrategies", false);
  if (list == nullptr) return out;
  auto lat = pointer_append(pointer, "failureStrategies");
  std::map<std::string, std::string> seen; // error type -> where it was first handled
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto at = pointer_append(lat, i);
    const auto& item = (*list)[i];
    if (!item.is_object()) {
      check.error(at, std::string("a failure strategy must be a mapping with 'onFailure', not ") +
                          type_name(item));
      continue;
    }
    check.only(item, at, {"onFailure"});
    const auto* on = check.object(item, at, "onFailure", true);
    if (on == nullptr) continue;
    auto oat = pointer_append(at, "onFailure");
    check.only(*on, oat, {"errors", "action"});
    FailureStrategy s;
    s.location = check.locate(at);
    auto errors = check.strings(*on, oat, "errors", true);
    if (errors.empty() && on->contains("errors")) {
      check.error(pointer_append(oat, "errors"), "'errors' needs at least one error type");
    }
    const auto& known = failure_error_types();
    for (std::size_t e = 0; e < errors.size(); ++e) {
      if (std::find(known.begin(), known.end(), errors[e]) == known.end()) {
        check.error(pointer_append(pointer_append(oat, "errors"), e),
                    "unknown error type '" + errors[e] + "' (expected " + join_names(known) + ")");
      } else if (auto [it, fresh] = seen.emplace(errors[e], check.locate(at)); !fresh) {
        check.error(pointer_append(pointer_append(oat, "errors"), e),
                    "error type '" + errors[e] + "' is already handled by the strategy at " +
                        it->second);
      }
    }
    s.errors = std::move(errors);
    s.action = parse_action(*on, oat, check, "");
    out.push_back(std::move(s));
  }
  return out;
}

FailureStrategy default_deployment_strategy() {
  FailureStrategy s;
  s.errors = {"AllErrors"};
  s.action.type = action::kStageRollback;
  s.location = "the default of Deployment stages";
  return s;
}

std::optional<Resolution>
resolve_failure(const std::vector<const std::vector<FailureStrategy>*>& levels,
                const std::string& error_type) {
  const std::string category = failure_category(error_type);
  for (const auto* level : levels) {
    if (level == nullptr) continue;
    const FailureStrategy* all = nullptr;
    for (const auto& s : *level) {
      if (std::find(s.errors.begin(), s.errors.end(), category) != s.errors.end()) {
        return Resolution{s.action, s.location};
      }
      if (all == nullptr &&
          std::find(s.errors.begin(), s.errors.end(), "AllErrors") != s.errors.end()) {
        all = &s;
      }
    }
    if (all != nullptr) return Resolution{all->action, all->location};
  }
  return std::nullopt;
}

void to_json(json& j, const FailureAction& a) {
  j = {{"type", a.type}};
  if (a.type == action::kRetry) {
    j["retryCount"] = a.retry_count;
    json intervals = json::array();
    for (auto d : a.retry_intervals) intervals.push_back(d.count());
    j["retryIntervalsMs"] = intervals;
  }
  if (a.timeout.count() > 0) j["timeoutMs"] = a.timeout.count();
  if (!a.then.empty()) j["then"] = a.then.front();
}

void from_json(const json& j, FailureAction& a) {
  a.type = j.value("type", "");
  a.retry_count = j.value("retryCount", 0);
  a.retry_intervals.clear();
  for (const auto& d : j.value("retryIntervalsMs", json::array())) {
    a.retry_intervals.emplace_back(d.get<std::int64_t>());
  }
  a.timeout = std::chrono::milliseconds(j.value("timeoutMs", std::int64_t{0}));
  a.then.clear();
  if (j.contains("then")) a.then.push_back(j["then"].get<FailureAction>());
}

void to_json(json& j, const FailureStrategy& s) {
  j = {{"errors", s.errors}, {"action", s.action}, {"location", s.location}};
}

void from_json(const json& j, FailureStrategy& s) {
  s.errors = j.value("errors", std::vector<std::string>{});
  s.action = j.at("action").get<FailureAction>();
  s.location = j.value("location", "");
}

} // namespace capstan::model
