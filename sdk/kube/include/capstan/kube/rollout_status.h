// Whether a workload has finished rolling out, by the rules of `kubectl rollout status`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace capstan::kube {

struct RolloutStatus {
  enum class State { kInProgress, kDone, kFailed } state = State::kInProgress;
  // kubectl's message: "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new
  // replicas have been updated...", "deployment \"web\" successfully rolled out", ...
  std::string message;
  // Why a rollout failed, as the workload's condition says: ProgressDeadlineExceeded (a
  // Deployment), BackoffLimitExceeded or DeadlineExceeded (a Job), ...; empty otherwise.
  std::string reason;
  bool done() const { return state == State::kDone; }
  bool failed() const { return state == State::kFailed; }
  // A failure because a deadline the workload sets passed (progressDeadlineSeconds,
  // activeDeadlineSeconds): a steady state not reached in time.
  bool deadline_exceeded() const {
    return failed() && (reason == "ProgressDeadlineExceeded" || reason == "DeadlineExceeded");
  }
};

// For Deployment, StatefulSet and DaemonSet as `kubectl rollout status` judges them (a
// Deployment past its progressDeadlineSeconds fails), and for Job as a steady-state wait does
// (Complete → done, Failed → failed). Other kinds are done at once.
RolloutStatus rollout_status(const nlohmann::json& object);

// True for the kinds rollout_status() waits on.
bool is_rollout_kind(const std::string& kind);

} // namespace capstan::kube
