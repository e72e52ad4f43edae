// Which objects are workloads Capstan manages to steady state, per deployment strategy.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "capstan/manifest/resource.h"

namespace capstan::manifest {

enum class Strategy { Rolling, Canary, BlueGreen };

// Kinds whose pods a deployment rolls: Deployment, StatefulSet, DaemonSet, DeploymentConfig
// (OpenShift), plus Job, CronJob, Pod, ReplicaSet and ReplicationController.
bool is_workload_kind(std::string_view kind);

// harness.io/direct-apply: "true" makes a workload unmanaged: applied, never tracked.
bool is_direct_apply(const Resource& r);

// The managed workloads of a strategy, as indexes into `resources`:
//   Rolling:           Deployment, StatefulSet, DaemonSet, DeploymentConfig
//   Canary, BlueGreen: Deployment, StatefulSet, DeploymentConfig
// Objects annotated harness.io/direct-apply are left out.
std::vector<std::size_t> managed_workloads(const std::vector<Resource>& resources,
                                           Strategy strategy);

// Canary and blue-green manage exactly one workload; anything else is a ManifestError with
// Harness's wording, naming the workloads found.
std::size_t single_managed_workload(const std::vector<Resource>& resources, Strategy strategy);

// Adds harness.io/release-name=<release> to the pod template labels of the managed workloads
// (the label instance tracking and steady-state checks select pods by).
void label_release(std::vector<Resource>& resources, Strategy strategy,
                   const std::string& release_name);

// The replicas the workload declares (1 when spec.replicas is absent).
int declared_replicas(const Resource& workload);

} // namespace capstan::manifest
