// Workload detection and the single-workload rule of canary and blue-green deployments.
#include "capstan/manifest/workloads.h"

#include <set>

#include "capstan/manifest/error.h"

namespace capstan::manifest {

bool is_workload_kind(std::string_view kind) {
  static const std::set<std::string, std::less<>> kinds = {
      "Deployment", "StatefulSet", "DaemonSet",  "DeploymentConfig",     "Job",
      "CronJob",    "Pod",         "ReplicaSet", "ReplicationController"};
  return kinds.count(kind) > 0;
}

bool is_direct_apply(const Resource& r) {
  return r.annotation_true(annotations::kDirectApply);
}

std::vector<std::size_t> managed_workloads(const std::vector<Resource>& resources,
                                           Strategy strategy) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < resources.size(); ++i) {
    const Resource& r = resources[i];
    std::string kind = r.kind();
    bool managed = kind == "Deployment" || kind == "StatefulSet" || kind == "DeploymentConfig" ||
                   (strategy == Strategy::Rolling && kind == "DaemonSet");
    if (managed && !is_direct_apply(r)) out.push_back(i);
  }
  return out;
}

std::size_t single_managed_workload(const std::vector<Resource>& resources, Strategy strategy) {
  if (strategy == Strategy::Rolling) {
    throw ManifestError("rolling deployments manage any number of workloads");
  }
  auto found = managed_workloads(resources, strategy);
  bool canary = strategy == Strategy::Canary;
  if (found.empty()) {
    throw ManifestError(
        canary ? "No workload found in the Manifests. Can't do Canary Deployment. Only "
                 "Deployment, DeploymentConfig (OpenShift) and StatefulSet workloads are "
                 "supported in Canary workflow type."
               : "No workload found in the Manifests. Can't do Blue/Green Deployment. Only "
                 "Deployment, DeploymentConfig (OpenShift) and StatefulSet workloads are "
                 "supported in Blue/Green deployment.");
  }
  if (found.size() > 1) {
    std::string names;
    for (std::size_t i : found) {
      if (!names.empty()) names += ", ";
      names += resources[i].kind() + "/" + resources[i].name() + " (" + resources[i].where() + ")";
    }
    std::string count = std::to_string(found.size());
    throw ManifestError(
        (canary ? "Found " + count + " workloads in manifest: [" + names +
                      "]. Canary deployment supports only one workload"
                : "Found " + count + " workloads in manifest: [" + names +
                      "]. Blue/Green Workflows support a single Deployment, DeploymentConfig "
                      "(OpenShift) or StatefulSet workload only") +
        ". Annotate the others with " + annotations::kDirectApply +
        ": \"true\" to apply them without managing them.");
  }
  return found.front();
}

void label_release(std::vector<Resource>& resources, Strategy strategy,
                   const std::string& release_name) {
  for (std::size_t i : managed_workloads(resources, strategy)) {
    if (nlohmann::json* labels = pod_template_labels(resources[i].object)) {
      (*labels)[labels::kReleaseName] = release_name;
    }
  }
}

int declared_replicas(const Resource& workload) {
  auto spec = workload.object.find("spec");
  if (spec == workload.object.end() || !spec->is_object()) return 1;
  auto r = spec->find("replicas");
  if (r == spec->end() || !r->is_number_integer()) return 1;
  return static_cast<int>(r->get<long long>());
}

} // namespace capstan::manifest
