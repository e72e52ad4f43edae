// Canary deployments: a copy of the managed workload, named <name>-canary, running a few pods
// labelled harness.io/track: canary next to the stable ones.
#pragma once

#include <optional>
#include <vector>

#include "capstan/manifest/resource.h"

namespace capstan::manifest {

enum class InstanceUnit { Count, Percentage };

// Harness's rule: a count is taken as given; a percentage of the target replicas is rounded
// half up and never below 1. Throws ManifestError for a count below 1 or a percentage outside
// 1..100.
int canary_instances(InstanceUnit unit, int instances, int target_replicas);

struct CanaryPlan {
  // What the canary step applies: the manifests with the managed workload replaced by its
  // canary copy.
  std::vector<Resource> resources;
  ResourceId workload;        // the managed workload as the manifests name it
  ResourceId canary_workload; // <name>-canary
  int replicas = 0;
};

// Builds the canary from the manifests (namespaces already defaulted). `target_replicas` is
// what a percentage applies to; the workload's declared replicas by default.
CanaryPlan prepare_canary(std::vector<Resource> resources, InstanceUnit unit, int instances,
                          std::optional<int> target_replicas = std::nullopt);

// For the primary (rolling) phase of a canary deployment: harness.io/track: stable on the pod
// template labels and, unless `add_to_selector` is false (a selector is immutable once a
// Deployment exists without it), on the selector.
void mark_stable(Resource& workload, bool add_to_selector = true);

// The selector labels of a workload (spec.selector.matchLabels, or spec.selector for a
// DeploymentConfig), created when missing.
nlohmann::json& selector_labels(Resource& workload);

} // namespace capstan::manifest
