// What a stage's Harness-shaped service, environment and overrides ask the kubernetes plugin to
// fetch and in which order their values apply.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "capstan/manifest/values.h"

namespace capstan::manifest {

struct ManifestStore {
  std::string type;               // Git, Github, Gitlab, Bitbucket, Local, Inline, ...
  nlohmann::json spec;            // the store's spec as written (connectorRef, branch, ...)
  std::vector<std::string> paths; // spec.paths
  std::string content;            // spec.content of an Inline store
};

struct ManifestSpec {
  std::string identifier;
  std::string type; // K8sManifest or Values
  ManifestStore store;
  std::vector<std::string> values_paths; // K8sManifest: spec.valuesPaths
  bool skip_resource_versioning = false; // K8sManifest: spec.skipResourceVersioning
  std::string origin;                    // "service", "environment prod", ...
};

struct ManifestPlan {
  ManifestSpec k8s_manifest;        // the service's one K8sManifest
  std::vector<ManifestSpec> values; // Values manifests, lowest priority first
};

// A `manifests:` list from one override level, named for messages.
struct OverrideLayer {
  std::string origin;
  nlohmann::json manifests;
};

// The override layers of a stage in Harness's precedence, lowest first: the environment's own
// overrides (environment.overrides.manifests), then the environment's overrides for this
// service (serviceOverrides.manifests), then the infrastructure's (overrides.manifests of the
// infrastructure definition). Absent parts are skipped; each document may be wrapped in its
// top-level key or not.
std::vector<OverrideLayer> stage_overrides(const nlohmann::json& environment,
                                           const nlohmann::json& service_overrides,
                                           const nlohmann::json& infrastructure);

// Reads service.serviceDefinition.spec.manifests plus the override layers. The service must be
// of type Kubernetes with exactly one K8sManifest; Values manifests of the service come first,
// then each layer's, in order. Throws ManifestError naming the offending field.
ManifestPlan plan_manifests(const nlohmann::json& service,
                            const std::vector<OverrideLayer>& overrides = {});

// The values layer of an Inline store.
ValuesFile inline_values(const ManifestSpec& spec);

} // namespace capstan::manifest
