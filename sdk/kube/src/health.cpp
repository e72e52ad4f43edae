// Argo CD's health assessment of the common kinds, on live objects as JSON.
#include "capstan/kube/health.h"

#include <array>

#include "json_fields.h"

namespace capstan::kube {
namespace {

using nlohmann::json;

std::int64_t num(const json& obj, const json::json_pointer& ptr, std::int64_t fallback = 0) {
  if (!obj.contains(ptr)) return fallback;
  const json& v = obj.at(ptr);
  return v.is_number() ? v.get<std::int64_t>() : fallback;
}

std::optional<std::int64_t> opt_num(const json& obj, const json::json_pointer& ptr) {
  if (!obj.contains(ptr) || !obj.at(ptr).is_number()) return std::nullopt;
  return obj.at(ptr).get<std::int64_t>();
}

const json* condition(const json& obj, std::string_view type) {
  static const json::json_pointer kConditions("/status/conditions");
  if (!obj.contains(kConditions) || !obj.at(kConditions).is_array()) return nullptr;
  for (const auto& c : obj.at(kConditions)) {
    if (c.is_object() && c.value("type", "") == type) return &c;
  }
  return nullptr;
}

Health make(HealthStatus s, std::string message = {}) {
  return Health{s, std::move(message)};
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

Health deployment(const json& d) {
  if (d.contains("spec") && d["spec"].value("paused", false)) {
    return make(HealthStatus::kSuspended, "Deployment is paused");
  }
  auto generation = num(d, json::json_pointer("/metadata/generation"));
  auto observed = num(d, json::json_pointer("/status/observedGeneration"));
  if (generation > observed) {
    return make(HealthStatus::kProgressing,
                "Waiting for rollout to finish: observed deployment generation less than "
                "desired generation");
  }
  const json* progressing = condition(d, "Progressing");
  if (progressing != nullptr && progressing->value("reason", "") == "ProgressDeadlineExceeded") {
    return make(HealthStatus::kDegraded, "Deployment " +
                                             quoted(detail::text_at(d, "/metadata/name")) +
                                             " exceeded its progress deadline");
  }
  auto spec_replicas = opt_num(d, json::json_pointer("/spec/replicas"));
  auto updated = num(d, json::json_pointer("/status/updatedReplicas"));
  auto replicas = num(d, json::json_pointer("/status/replicas"));
  auto available = num(d, json::json_pointer("/status/availableReplicas"));
  if (spec_replicas && updated < *spec_replicas) {
    return make(HealthStatus::kProgressing,
                "Waiting for rollout to finish: " + std::to_string(updated) + " out of " +
                    std::to_string(*spec_replicas) + " new replicas have been updated...");
  }
  if (replicas > updated) {
    return make(HealthStatus::kProgressing,
                "Waiting for rollout to finish: " + std::to_string(replicas - updated) +
                    " old replicas are pending termination...");
  }
  if (available < updated) {
    return make(HealthStatus::kProgressing,
                "Waiting for rollout to finish: " + std::to_string(available) + " of " +
                    std::to_string(updated) + " updated replicas are available...");
  }
  return make(HealthStatus::kHealthy);
}

Health stateful_set(const json& s) {
  auto generation = num(s, json::json_pointer("/metadata/generation"));
  auto observed = num(s, json::json_pointer("/status/observedGeneration"));
  if (observed == 0 || generation > observed) {
    return make(HealthStatus::kProgressing,
                "Waiting for statefulset spec update to be observed...");
  }
  auto spec_replicas = opt_num(s, json::json_pointer("/spec/replicas"));
  auto ready = num(s, json::json_pointer("/status/readyReplicas"));
  if (spec_replicas && ready < *spec_replicas) {
    return make(HealthStatus::kProgressing,
                "Waiting for " + std::to_string(*spec_replicas - ready) + " pods to be ready...");
  }
  auto updated = num(s, json::json_pointer("/status/updatedReplicas"));
  std::string strategy = detail::text_at(s, "/spec/updateStrategy/type");
  if (strategy.empty()) strategy = "RollingUpdate";
  if (strategy == "RollingUpdate" &&
      s.contains(json::json_pointer("/spec/updateStrategy/rollingUpdate"))) {
    auto partition = opt_num(s, json::json_pointer("/spec/updateStrategy/rollingUpdate/partition"));
    if (spec_replicas && partition && updated < *spec_replicas - *partition) {
      return make(HealthStatus::kProgressing,
                  "Waiting for partitioned roll out to finish: " + std::to_string(updated) +
                      " out of " + std::to_string(*spec_replicas - *partition) +
                      " new pods have been updated...");
    }
    return make(HealthStatus::kHealthy,
                "partitioned roll out complete: " + std::to_string(updated) +
                    " new pods have been updated...");
  }
  if (strategy == "OnDelete") {
    return make(HealthStatus::kHealthy, "statefulset has " + std::to_string(ready) + " ready pods");
  }
  std::string update_rev = detail::text_at(s, "/status/updateRevision");
  std::string current_rev = detail::text_at(s, "/status/currentRevision");
  if (update_rev != current_rev) {
    return make(HealthStatus::kProgressing, "waiting for statefulset rolling update to complete " +
                                                std::to_string(updated) + " pods at revision " +
                                                update_rev + "...");
  }
  return make(HealthStatus::kHealthy,
              "statefulset rolling update complete " +
                  std::to_string(num(s, json::json_pointer("/status/currentReplicas"))) +
                  " pods at revision " + current_rev + "...");
}

Health daemon_set(const json& d) {
  auto generation = num(d, json::json_pointer("/metadata/generation"));
  auto observed = num(d, json::json_pointer("/status/observedGeneration"));
  if (generation > observed) {
    return make(HealthStatus::kProgressing, "Waiting for daemonset spec update to be observed...");
  }
  if (detail::text_at(d, "/spec/updateStrategy/type") == "OnDelete") {
    return make(HealthStatus::kHealthy,
                "daemonset has " +
                    std::to_string(num(d, json::json_pointer("/status/numberAvailable"))) +
                    " available pods");
  }
  std::string name = quoted(detail::text_at(d, "/metadata/name"));
  auto desired = num(d, json::json_pointer("/status/desiredNumberScheduled"));
  auto updated = num(d, json::json_pointer("/status/updatedNumberScheduled"));
  auto available = num(d, json::json_pointer("/status/numberAvailable"));
  if (updated < desired) {
    return make(HealthStatus::kProgressing, "Waiting for daemon set " + name +
                                                " rollout to finish: " + std::to_string(updated) +
                                                " out of " + std::to_string(desired) +
                                                " new pods have been updated...");
  }
  if (available < desired) {
    return make(HealthStatus::kProgressing, "Waiting for daemon set " + name +
                                                " rollout to finish: " + std::to_string(available) +
                                                " of " + std::to_string(desired) +
                                                " updated pods are available...");
  }
  return make(HealthStatus::kHealthy);
}

Health replica_set(const json& r) {
  auto generation = num(r, json::json_pointer("/metadata/generation"));
  auto observed = num(r, json::json_pointer("/status/observedGeneration"));
  if (generation > observed) {
    return make(HealthStatus::kProgressing,
                "Waiting for rollout to finish: observed replica set generation less than "
                "desired generation");
  }
  const json* failure = condition(r, "ReplicaFailure");
  if (failure != nullptr && failure->value("status", "") == "True") {
    return make(HealthStatus::kDegraded, failure->value("message", ""));
  }
  auto spec_replicas = opt_num(r, json::json_pointer("/spec/replicas"));
  auto available = num(r, json::json_pointer("/status/availableReplicas"));
  if (spec_replicas && available < *spec_replicas) {
    return make(HealthStatus::kProgressing,
                "Waiting for rollout to finish: " + std::to_string(available) + " out of " +
                    std::to_string(*spec_replicas) + " new replicas are available...");
  }
  return make(HealthStatus::kHealthy);
}

bool pod_ready(const json& p) {
  const json* ready = condition(p, "Ready");
  return ready != nullptr && ready->value("status", "") == "True";
}

Health pod(const json& p) {
  std::string restart = detail::text_at(p, "/spec/restartPolicy");
  if (restart.empty()) restart = "Always";
  std::string message = detail::text_at(p, "/status/message");
  const json empty = json::array();
  const json& statuses = p.contains(json::json_pointer("/status/containerStatuses"))
                             ? p.at(json::json_pointer("/status/containerStatuses"))
                             : empty;
  if (restart == "Always") {
    // Hook pods (OnFailure/Never) are exempt: an image pull error may still resolve and they
    // must not fail a sync early.
    std::string messages;
    bool degraded = false;
    for (const auto& cs : statuses) {
      if (!cs.contains(json::json_pointer("/state/waiting"))) continue;
      const json& waiting = cs.at(json::json_pointer("/state/waiting"));
      std::string reason = waiting.value("reason", "");
      bool bad = reason.rfind("Err", 0) == 0 ||
                 (reason.size() >= 5 && reason.compare(reason.size() - 5, 5, "Error") == 0) ||
                 (reason.size() >= 7 && reason.compare(reason.size() - 7, 7, "BackOff") == 0);
      if (bad) {
        degraded = true;
        std::string m = waiting.value("message", "");
        if (m.empty()) m = cs.value("name", "container") + ": " + reason;
        messages += (messages.empty() ? "" : ", ") + m;
      }
    }
    if (degraded) return make(HealthStatus::kDegraded, messages);
  }
  std::string phase = detail::text_at(p, "/status/phase");
  if (phase == "Pending") return make(HealthStatus::kProgressing, message);
  if (phase == "Succeeded") return make(HealthStatus::kHealthy, message);
  if (phase == "Failed") {
    if (!message.empty()) return make(HealthStatus::kDegraded, message);
    std::array<const char*, 2> lists = {"/status/initContainerStatuses",
                                        "/status/containerStatuses"};
    for (const char* list : lists) {
      json::json_pointer ptr(list);
      if (!p.contains(ptr)) continue;
      for (const auto& cs : p.at(ptr)) {
        if (!cs.contains(json::json_pointer("/state/terminated"))) continue;
        const json& t = cs.at(json::json_pointer("/state/terminated"));
        if (!t.value("message", "").empty()) return make(HealthStatus::kDegraded, t["message"]);
        if (t.value("reason", "") == "OOMKilled") return make(HealthStatus::kDegraded, "OOMKilled");
        if (t.value("exitCode", 0) != 0) {
          return make(HealthStatus::kDegraded, "container " + quoted(cs.value("name", "")) +
                                                   " failed with exit code " +
                                                   std::to_string(t.value("exitCode", 0)));
        }
      }
    }
    return make(HealthStatus::kDegraded);
  }
  if (phase == "Running") {
    if (restart != "Always") return make(HealthStatus::kProgressing, message);
    if (pod_ready(p)) return make(HealthStatus::kHealthy, message);
    for (const auto& cs : statuses) {
      if (cs.contains(json::json_pointer("/lastState/terminated"))) {
        return make(HealthStatus::kDegraded, message);
      }
    }
    return make(HealthStatus::kProgressing, message);
  }
  return make(HealthStatus::kUnknown, message);
}

Health job(const json& j) {
  bool complete = false;
  bool failed = false;
  std::string message;
  std::string fail_message;
  if (j.contains(json::json_pointer("/status/conditions"))) {
    for (const auto& c : j.at(json::json_pointer("/status/conditions"))) {
      if (c.value("status", "True") != "True") continue;
      std::string type = c.value("type", "");
      if (type == "Failed") {
        failed = complete = true;
        fail_message = c.value("message", "");
      } else if (type == "Complete") {
        complete = true;
        message = c.value("message", "");
      }
    }
  }
  if (!complete) {
    if (j.contains(json::json_pointer("/spec/suspend")) &&
        j.at(json::json_pointer("/spec/suspend")) == true) {
      return make(HealthStatus::kSuspended, "Job is suspended");
    }
    return make(HealthStatus::kProgressing, message);
  }
  if (failed) return make(HealthStatus::kDegraded, fail_message);
  return make(HealthStatus::kHealthy, message);
}

Health load_balanced(const json& o, bool only_load_balancer) {
  if (only_load_balancer && detail::text_at(o, "/spec/type") != "LoadBalancer") {
    return make(HealthStatus::kHealthy);
  }
  json::json_pointer ingress("/status/loadBalancer/ingress");
  if (o.contains(ingress) && o.at(ingress).is_array() && !o.at(ingress).empty()) {
    return make(HealthStatus::kHealthy);
  }
  return make(HealthStatus::kProgressing);
}

Health pvc(const json& p) {
  std::string phase = detail::text_at(p, "/status/phase");
  if (phase == "Lost") return make(HealthStatus::kDegraded);
  if (phase == "Pending") return make(HealthStatus::kProgressing);
  if (phase == "Bound") return make(HealthStatus::kHealthy);
  return make(HealthStatus::kUnknown);
}

Health hpa(const json& h) {
  // autoscaling/v1 keeps its conditions in an annotation; v2 in status.
  json conditions = json::array();
  json::json_pointer annotation(
      "/metadata/annotations/autoscaling.alpha.kubernetes.io~1conditions");
  if (h.contains(json::json_pointer("/status/conditions"))) {
    conditions = h.at(json::json_pointer("/status/conditions"));
  } else if (h.contains(annotation) && h.at(annotation).is_string()) {
    conditions = json::parse(h.at(annotation).get<std::string>(), nullptr, false);
    if (conditions.is_discarded()) {
      return make(HealthStatus::kUnknown, "the HPA's conditions annotation is not valid JSON");
    }
  }
  static const std::array<std::pair<const char*, const char*>, 4> kDegraded = {{
      {"AbleToScale", "FailedGetScale"},
      {"AbleToScale", "FailedUpdateScale"},
      {"ScalingActive", "FailedGetResourceMetric"},
      {"ScalingActive", "InvalidSelector"},
  }};
  static const std::array<std::pair<const char*, const char*>, 4> kHealthy = {{
      {"AbleToScale", "SucceededRescale"},
      {"ScalingLimited", "DesiredWithinRange"},
      {"ScalingLimited", "TooFewReplicas"},
      {"ScalingLimited", "TooManyReplicas"},
  }};
  for (const auto& c : conditions) {
    if (!c.is_object()) continue;
    std::string type = c.value("type", "");
    std::string reason = c.value("reason", "");
    for (const auto& [t, r] : kDegraded) {
      if (type == t && reason == r) return make(HealthStatus::kDegraded, c.value("message", ""));
    }
    for (const auto& [t, r] : kHealthy) {
      if (type == t && reason == r) return make(HealthStatus::kHealthy, c.value("message", ""));
    }
  }
  return make(HealthStatus::kProgressing, "Waiting to Autoscale");
}

Health api_service(const json& a) {
  const json* available = condition(a, "Available");
  if (available != nullptr && available->value("status", "") == "True") {
    return make(HealthStatus::kHealthy, available->value("message", ""));
  }
  if (available != nullptr) {
    return make(HealthStatus::kProgressing,
                available->value("reason", "") + ": " + available->value("message", ""));
  }
  return make(HealthStatus::kProgressing, "Waiting to be processed");
}

} // namespace

std::string_view to_string(HealthStatus status) {
  switch (status) {
  case HealthStatus::kHealthy:
    return "Healthy";
  case HealthStatus::kSuspended:
    return "Suspended";
  case HealthStatus::kProgressing:
    return "Progressing";
  case HealthStatus::kMissing:
    return "Missing";
  case HealthStatus::kDegraded:
    return "Degraded";
  case HealthStatus::kUnknown:
    return "Unknown";
  }
  return "Unknown";
}

std::optional<HealthStatus> parse_health_status(std::string_view text) {
  for (auto s : {HealthStatus::kHealthy, HealthStatus::kSuspended, HealthStatus::kProgressing,
                 HealthStatus::kMissing, HealthStatus::kDegraded, HealthStatus::kUnknown}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

bool is_worse(HealthStatus a, HealthStatus b) {
  return static_cast<int>(a) > static_cast<int>(b);
}

std::optional<Health> assess_health(const json& object) {
  if (!object.is_object()) return std::nullopt;
  if (object.contains(json::json_pointer("/metadata/deletionTimestamp")) &&
      !object.at(json::json_pointer("/metadata/deletionTimestamp")).is_null()) {
    return make(HealthStatus::kProgressing, "Pending deletion");
  }
  std::string api_version = object.value("apiVersion", "");
  std::string group = api_version.find('/') == std::string::npos
                          ? std::string()
                          : api_version.substr(0, api_version.find('/'));
  std::string kind = object.value("kind", "");
  if (group == "apps" || group == "extensions") {
    if (kind == "Deployment") return deployment(object);
    if (kind == "StatefulSet" && group == "apps") return stateful_set(object);
    if (kind == "DaemonSet") return daemon_set(object);
    if (kind == "ReplicaSet") return replica_set(object);
  }
  if ((group == "extensions" || group == "networking.k8s.io") && kind == "Ingress") {
    return load_balanced(object, false);
  }
  if (group.empty()) {
    if (kind == "Pod") return pod(object);
    if (kind == "Service") return load_balanced(object, true);
    if (kind == "PersistentVolumeClaim") return pvc(object);
  }
  if (group == "batch" && kind == "Job") return job(object);
  if (group == "autoscaling" && kind == "HorizontalPodAutoscaler") return hpa(object);
  if (group == "apiregistration.k8s.io" && kind == "APIService") return api_service(object);
  return std::nullopt;
}

} // namespace capstan::kube
