// Kubernetes objects out of rendered manifests: identity, validation, namespaces, ordering.
#pragma once

#include <nlohmann/json.hpp>

#include <compare>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace capstan::manifest {

// Annotations and labels Capstan reads and writes, named as Harness names them so that
// manifests written for Harness keep their meaning.
namespace annotations {
inline constexpr const char* kDirectApply = "harness.io/direct-apply";
inline constexpr const char* kSkipVersioning = "harness.io/skip-versioning";
inline constexpr const char* kPrimaryService = "harness.io/primary-service";
inline constexpr const char* kStageService = "harness.io/stage-service";
inline constexpr const char* kSkipFileForDeploy = "harness.io/skip-file-for-deploy";
} // namespace annotations
namespace labels {
inline constexpr const char* kTrack = "harness.io/track";
inline constexpr const char* kColor = "harness.io/color";
inline constexpr const char* kReleaseName = "harness.io/release-name";
} // namespace labels

// An object's identity. `versioned` records that a ConfigMap/Secret got a release suffix.
struct ResourceId {
  std::string kind;
  std::string name;
  std::string namespace_; // empty for cluster-scoped objects (or not yet defaulted)
  bool versioned = false;

  // "Kind/namespace/name", or "Kind/name" without a namespace.
  std::string key() const;
  bool same_object(const ResourceId& o) const {
    return kind == o.kind && name == o.name && namespace_ == o.namespace_;
  }
};

struct Resource {
  nlohmann::json object;
  std::string file;         // manifest file it came from (relative to its store)
  int line = 0;             // first line of its document in the rendered file
  bool skip_deploy = false; // the file starts with "# harness.io/skip-file-for-deploy"
  bool versioned = false;   // renamed with a release suffix by apply_versioning

  std::string api_version() const;
  std::string kind() const;
  std::string name() const;
  std::string namespace_() const;
  ResourceId id() const;
  // "" when absent.
  std::string annotation(std::string_view key) const;
  // The annotation's value is "true" (any case).
  bool annotation_true(std::string_view key) const;
  // "file:line" for messages.
  std::string where() const;
};

// Splits rendered text into objects: empty documents are dropped, a `kind: List` is expanded
// into its items, and a document that is not a map, or lacks apiVersion, kind or metadata.name,
// is an error naming the file and line.
std::vector<Resource> parse_resources(std::string_view text, const std::string& file);

// Kinds served cluster-wide by Kubernetes itself. Custom kinds are unknown here: pass a
// predicate (from API discovery) to default_namespace to cover them.
bool is_cluster_scoped(std::string_view kind);

// Sets metadata.namespace on every namespaced object that has none.
void default_namespace(std::vector<Resource>& resources, const std::string& ns,
                       const std::function<bool(const Resource&)>& cluster_scoped = {});

// Harness's apply order: Namespace, ResourceQuota, LimitRange, PodSecurityPolicy, Secret,
// ConfigMap, StorageClass, PersistentVolume, PersistentVolumeClaim, ServiceAccount,
// CustomResourceDefinition, ClusterRole, ClusterRoleBinding, Role, RoleBinding, Service,
// DaemonSet, Pod, ReplicationController, ReplicaSet, Deployment, DeploymentConfig,
// StatefulSet, Job, CronJob, Ingress, APIService, then other kinds alphabetically; within a
// kind by name (case-insensitive). Stable. Deletion uses the reverse.
int kind_order(std::string_view kind);
void sort_for_apply(std::vector<Resource>& resources);
void sort_for_delete(std::vector<Resource>& resources);

// Two documents describing the same object are an error naming both places.
void check_duplicates(const std::vector<Resource>& resources);

// The pod template specs inside a workload object (spec for a Pod, spec.template.spec,
// spec.jobTemplate.spec.template.spec), for transforms that edit containers and volumes.
std::vector<nlohmann::json*> pod_specs(nlohmann::json& object);
// The pod template's metadata.labels (created when missing); null for kinds without a template.
nlohmann::json* pod_template_labels(nlohmann::json& object);

} // namespace capstan::manifest
