// Steady-state waits: until Deployments, StatefulSets, DaemonSets and Jobs have rolled out
// (kubectl `rollout status` rules, progressDeadlineSeconds included), streaming their events and
// their failing pods' reasons to a log while waiting.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "capstan/kube/client.h"
#include "capstan/kube/rollout_status.h"

namespace capstan::kube {

enum class LogLevel { kInfo, kWarn, kError };

// The events of some namespaces as they were before a change: a wait given it shows only the
// events created or updated since (a repeated event's count going up is an update), whatever
// their timestamps say. Timestamps have whole-second resolution, so a rollout that follows
// another within a second would otherwise show the earlier one's events as its own.
class EventBaseline {
public:
  // Lists the events of each namespace (one request each). Throws Error.
  static EventBaseline take(const Client& client, const std::set<std::string>& namespaces);
  // Adds the namespaces not yet covered.
  void extend(const Client& client, const std::set<std::string>& namespaces);

  bool covers(const std::string& namespace_) const { return seen_.count(namespace_) > 0; }
  // True when `event` (a v1 Event) was there, unchanged, when the baseline was taken.
  bool had(const nlohmann::json& event) const;

private:
  // namespace → event uid → resourceVersion
  std::map<std::string, std::map<std::string, std::string>> seen_;
};

struct WaitOptions {
  // When to give up (the step's timeout); none waits until done, failed or cancelled.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::function<bool()> cancelled;
  // Where progress lines, events and pod problems go. Called from several threads, never at
  // the same time.
  std::function<void(LogLevel, const std::string&)> log;
  // Events that happened before this are not shown (the deployment's start); used for the
  // namespaces `events_before` does not cover.
  std::chrono::system_clock::time_point events_since{};
  // Events that were there before the change (see EventBaseline) are not shown.
  std::shared_ptr<const EventBaseline> events_before;
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
  // For kFailed: the failed workload's status, reason included (ProgressDeadlineExceeded, ...).
  RolloutStatus failure;
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
