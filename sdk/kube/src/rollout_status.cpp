// `kubectl rollout status` rules for Deployment, StatefulSet and DaemonSet, plus Job completion.
#include "capstan/kube/rollout_status.h"

#include "json_fields.h"
namespace capstan::kube {
namespace {

using nlohmann::json;
using State = RolloutStatus::State;

std::int64_t num(const json& o, const char* ptr) {
  json::json_pointer p(ptr);
  return o.contains(p) && o.at(p).is_number() ? o.at(p).get<std::int64_t>() : 0;
}

std::optional<std::int64_t> opt_num(const json& o, const char* ptr) {
  json::json_pointer p(ptr);
  if (!o.contains(p) || !o.at(p).is_number()) return std::nullopt;
  return o.at(p).get<std::int64_t>();
}

const json* rollout_condition(const json& o, std::string_view type) {
  json::json_pointer p("/status/conditions");
  if (!o.contains(p) || !o.at(p).is_array()) return nullptr;
  for (const auto& c : o.at(p)) {
    if (c.is_object() && detail::text(c, "type") == type) return &c;
  }
  return nullptr;
}

RolloutStatus status(State s, std::string m) {
  return RolloutStatus{s, std::move(m), {}};
}

std::string q(const std::string& s) {
  return "\"" + s + "\"";
}

RolloutStatus deployment_rollout(const json& d) {
  std::string name = q(detail::text_at(d, "/metadata/name"));
  if (num(d, "/metadata/generation") > num(d, "/status/observedGeneration")) {
    return status(State::kInProgress, "Waiting for deployment spec update to be observed...");
  }
  const json* progressing = rollout_condition(d, "Progressing");
  if (progressing != nullptr &&
      detail::text(*progressing, "reason") == "ProgressDeadlineExceeded") {
    // kubectl's words, then the condition's own (which ReplicaSet timed out).
    std::string why = detail::text(*progressing, "message");
    RolloutStatus s = status(
        State::kFailed, "deployment " + name + " exceeded its progress deadline (" +
                            "ProgressDeadlineExceeded" + (why.empty() ? "" : ": " + why) + ")");
    s.reason = "ProgressDeadlineExceeded";
    return s;
  }
  auto spec_replicas = opt_num(d, "/spec/replicas");
  auto updated = num(d, "/status/updatedReplicas");
  auto replicas = num(d, "/status/replicas");
  auto available = num(d, "/status/availableReplicas");
  std::string prefix = "Waiting for deployment " + name + " rollout to finish: ";
  if (spec_replicas && updated < *spec_replicas) {
    return status(State::kInProgress, prefix + std::to_string(updated) + " out of " +
                                          std::to_string(*spec_replicas) +
                                          " new replicas have been updated...");
  }
  if (replicas > updated) {
    return status(State::kInProgress, prefix + std::to_string(replicas - updated) +
                                          " old replicas are pending termination...");
  }
  if (available < updated) {
    return status(State::kInProgress, prefix + std::to_string(available) + " of " +
                                          std::to_string(updated) +
                                          " updated replicas are available...");
  }
  return status(State::kDone, "deployment " + name + " successfully rolled out");
}

RolloutStatus daemon_set_rollout(const json& d) {
  std::string strategy = detail::text_at(d, "/spec/updateStrategy/type");
  if (!strategy.empty() && strategy != "RollingUpdate") {
    return status(State::kFailed,
                  "rollout status is only available for RollingUpdate strategy type");
  }
  std::string name = q(detail::text_at(d, "/metadata/name"));
  if (num(d, "/metadata/generation") > num(d, "/status/observedGeneration")) {
    return status(State::kInProgress, "Waiting for daemon set spec update to be observed...");
  }
  auto desired = num(d, "/status/desiredNumberScheduled");
  auto updated = num(d, "/status/updatedNumberScheduled");
  auto available = num(d, "/status/numberAvailable");
  std::string prefix = "Waiting for daemon set " + name + " rollout to finish: ";
  if (updated < desired) {
    return status(State::kInProgress, prefix + std::to_string(updated) + " out of " +
                                          std::to_string(desired) +
                                          " new pods have been updated...");
  }
  if (available < desired) {
    return status(State::kInProgress, prefix + std::to_string(available) + " of " +
                                          std::to_string(desired) +
                                          " updated pods are available...");
  }
  return status(State::kDone, "daemon set " + name + " successfully rolled out");
}

RolloutStatus stateful_set_rollout(const json& s) {
  std::string strategy = detail::text_at(s, "/spec/updateStrategy/type");
  if (!strategy.empty() && strategy != "RollingUpdate") {
    return status(State::kFailed,
                  "rollout status is only available for RollingUpdate strategy type");
  }
  auto observed = num(s, "/status/observedGeneration");
  if (observed == 0 || num(s, "/metadata/generation") > observed) {
    return status(State::kInProgress, "Waiting for statefulset spec update to be observed...");
  }
  auto spec_replicas = opt_num(s, "/spec/replicas");
  auto ready = num(s, "/status/readyReplicas");
  if (spec_replicas && ready < *spec_replicas) {
    return status(State::kInProgress,
                  "Waiting for " + std::to_string(*spec_replicas - ready) + " pods to be ready...");
  }
  auto updated = num(s, "/status/updatedReplicas");
  auto partition = opt_num(s, "/spec/updateStrategy/rollingUpdate/partition");
  if (partition && spec_replicas) {
    if (updated < *spec_replicas - *partition) {
      return status(State::kInProgress,
                    "Waiting for partitioned roll out to finish: " + std::to_string(updated) +
                        " out of " + std::to_string(*spec_replicas - *partition) +
                        " new pods have been updated...");
    }
    return status(State::kDone, "partitioned roll out complete: " + std::to_string(updated) +
                                    " new pods have been updated...");
  }
  std::string update_rev = detail::text_at(s, "/status/updateRevision");
  std::string current_rev = detail::text_at(s, "/status/currentRevision");
  if (update_rev != current_rev) {
    return status(State::kInProgress, "waiting for statefulset rolling update to complete " +
                                          std::to_string(updated) + " pods at revision " +
                                          update_rev + "...");
  }
  return status(State::kDone, "statefulset rolling update complete " +
                                  std::to_string(num(s, "/status/currentReplicas")) +
                                  " pods at revision " + current_rev + "...");
}

RolloutStatus job_rollout(const json& j) {
  std::string name = q(detail::text_at(j, "/metadata/name"));
  const json* failed = rollout_condition(j, "Failed");
  if (failed != nullptr && detail::text(*failed, "status") == "True") {
    std::string why = detail::text(*failed, "reason");
    std::string message = detail::text(*failed, "message");
    RolloutStatus s =
        status(State::kFailed, "job " + name + " failed" + (why.empty() ? "" : ": " + why) +
                                   (message.empty() ? "" : " (" + message + ")"));
    s.reason = why;
    return s;
  }
  const json* complete = rollout_condition(j, "Complete");
  if (complete != nullptr && detail::text(*complete, "status") == "True") {
    return status(State::kDone, "job " + name + " completed");
  }
  auto succeeded = num(j, "/status/succeeded");
  auto completions = opt_num(j, "/spec/completions").value_or(1);
  return status(State::kInProgress, "Waiting for job " + name +
                                        " to complete: " + std::to_string(succeeded) + " of " +
                                        std::to_string(completions) + " completions...");
}

} // namespace

bool is_rollout_kind(const std::string& kind) {
  return kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" || kind == "Job";
}

RolloutStatus rollout_status(const json& object) {
  std::string kind = object.value("kind", "");
  if (kind == "Deployment") return deployment_rollout(object);
  if (kind == "StatefulSet") return stateful_set_rollout(object);
  if (kind == "DaemonSet") return daemon_set_rollout(object);
  if (kind == "Job") return job_rollout(object);
  return status(State::kDone,
                kind + " " + q(detail::text_at(object, "/metadata/name")) + " has no rollout");
}

} // namespace capstan::kube
