// Steady-state waits: until Deployments, StatefulSets, DaemonSets and Jobs have rolled out
// (kubectl `rollout status` rules, progressDeadlineSeconds included), streaming their events and
// their failing pods' reasons to a log while waiting.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "capstan/kube/client.h"
#include "capstan/kube/rollout_status.h"

namespace capstan::kube {

enum class LogLevel { kInfo, kWarn, kError };

struct WaitOptions {
  // When to give up (the step's timeout); none waits until done, failed or cancelled.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::function<bool()> cancelled;
  // Where progress lines, events and pod problems go. Called from several threads, never at
  // the same time.
  std::function<void(LogLevel, const std::string&)> log;
  // Events that happened before this are not shown (the deployment's start).
  std::chrono::system_clock::time_point events_since{};
  // How often the pods of an unfinished workload are looked at for problems.
  std::chrono::milliseconds pod_check_every{3000};
};

struct WorkloadWait {
  ObjectRef ref;
  RolloutStatus status;
  std::vector<std::string> pod_problems; // "pod web-5d8-x2: container app: CrashLoopBackOff ..."
};

struct WaitResult {
  enum class Outcome { kReady, kFailed, kTimedOut, kCancelled };
  Outcome outcome = Outcome::kReady;
  std::string message; // one line: which workload, why
  std::vector<WorkloadWait> workloads;
  bool ready() const { return outcome == Outcome::kReady; }
};

// Waits for every workload in `refs` whose kind rollout_status() judges (other kinds are ready
// at once). Fails as soon as one fails (a Deployment past its progress deadline, a Job that
// failed); times out at the deadline with each unfinished workload's status and its pods'
// problems in the result. Connection trouble while waiting is retried until the deadline.
WaitResult wait_for_steady_state(const Client& client, const std::vector<ObjectRef>& refs,
                                 const WaitOptions& options);

// Why the pods a workload selects are not running and ready: scheduling failures, containers
// waiting (CrashLoopBackOff, ErrImagePull, ...) or terminated with an error, restarts, failed
// readiness. Empty when nothing is wrong.
std::vector<std::string> pod_problems(const Client& client, const nlohmann::json& workload);

// spec.selector (matchLabels and matchExpressions) as a label selector string; "" when none.
std::string label_selector(const nlohmann::json& selector);

} // namespace capstan::kube
