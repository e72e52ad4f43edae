// Health of Kubernetes objects, assessed the way Argo CD assesses it.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace capstan::kube {

// Ordered from best to worst: an application's health is the worst of its resources'.
enum class HealthStatus { kHealthy, kSuspended, kProgressing, kMissing, kDegraded, kUnknown };

struct Health {
  HealthStatus status = HealthStatus::kUnknown;
  std::string message;
};

std::string_view to_string(HealthStatus status); // "Healthy", "Progressing", ...
std::optional<HealthStatus> parse_health_status(std::string_view text);
// True when a is worse than b (Degraded is worse than Progressing, ...).
bool is_worse(HealthStatus a, HealthStatus b);

// The health of a live object, or nullopt for kinds that have no health of their own
// (ConfigMaps, Secrets, RBAC, custom resources, ...), which do not count towards an
// application's health. Covers Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Job,
// Service, Ingress, PersistentVolumeClaim, HorizontalPodAutoscaler and APIService; an object
// being deleted is Progressing ("Pending deletion"). Like Argo CD, other kinds are not guessed
// at.
std::optional<Health> assess_health(const nlohmann::json& object);

} // namespace capstan::kube
