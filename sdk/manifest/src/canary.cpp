// Canary workload preparation.
#include "capstan/manifest/canary.h"

#include <cmath>

#include "capstan/manifest/error.h"
#include "capstan/manifest/workloads.h"

namespace capstan::manifest {

int canary_instances(InstanceUnit unit, int instances, int target_replicas) {
  if (unit == InstanceUnit::Count) {
    if (instances < 1) {
      throw ManifestError("canary instances must be 1 or more, not " + std::to_string(instances));
    }
    return instances;
  }
  if (instances < 1 || instances > 100) {
    throw ManifestError("canary percentage must be between 1 and 100, not " +
                        std::to_string(instances));
  }
  // Java's Math.round: half up.
  auto n = static_cast<int>(std::floor(instances * target_replicas / 100.0 + 0.5));
  return n < 1 ? 1 : n;
}

nlohmann::json& selector_labels(Resource& workload) {
  auto& spec = workload.object["spec"];
  if (!spec.is_object()) spec = nlohmann::json::object();
  auto& selector = spec["selector"];
  if (!selector.is_object()) selector = nlohmann::json::object();
  if (workload.kind() == "DeploymentConfig") return selector;
  auto& match = selector["matchLabels"];
  if (!match.is_object()) match = nlohmann::json::object();
  return match;
}

CanaryPlan prepare_canary(std::vector<Resource> resources, InstanceUnit unit, int instances,
                          std::optional<int> target_replicas) {
  std::size_t idx = single_managed_workload(resources, Strategy::Canary);
  Resource& workload = resources[idx];
  CanaryPlan plan;
  plan.workload = workload.id();
  plan.replicas =
      canary_instances(unit, instances, target_replicas.value_or(declared_replicas(workload)));
  auto& meta = workload.object["metadata"];
  meta["name"] = workload.name() + "-canary";
  for (const char* server_field : {"resourceVersion", "uid", "creationTimestamp"}) {
    meta.erase(server_field);
  }
  workload.object.erase("status");
  workload.object["spec"]["replicas"] = plan.replicas;
  if (nlohmann::json* labels = pod_template_labels(workload.object)) {
    (*labels)[labels::kTrack] = "canary";
  }
  selector_labels(workload)[labels::kTrack] = "canary";
  plan.canary_workload = workload.id();
  plan.resources = std::move(resources);
  return plan;
}

void mark_stable(Resource& workload, bool add_to_selector) {
  if (nlohmann::json* labels = pod_template_labels(workload.object)) {
    (*labels)[labels::kTrack] = "stable";
  }
  if (add_to_selector) selector_labels(workload)[labels::kTrack] = "stable";
}

} // namespace capstan::manifest
