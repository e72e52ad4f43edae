// What a step knows about its stage: the infrastructure (cluster, namespace, release name),
// the service's manifests and artifact, and the values `<+...>` references in fetched files
// resolve to. Read from StepRequest.context_json (docs/plugin-authoring.md).
#pragma once

#include <capstan/kube/config.h>
#include <capstan/manifest/artifact.h>
#include <capstan/sdk/plugin.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace capstan::plugins::kubernetes {

struct StageContext {
  nlohmann::json raw;
  std::string execution_key; // "<executionId>/<stage identifier>": which run made a release
  std::string namespace_;    // the infrastructure's namespace
  std::string release_name;  // the infrastructure's releaseName
  kube::ClusterConfig cluster;
  std::string cluster_key; // identifies the cluster and credentials (for client reuse)
  std::optional<manifest::Artifact> artifact;
  nlohmann::json service;                // the service document (serviceDefinition, ...)
  nlohmann::json environment;            // may be null
  nlohmann::json infrastructure;         // the infrastructure definition
  std::filesystem::path service_dir;     // where a Local store's paths start
  std::filesystem::path environment_dir; // ... for the environment's override stores
  nlohmann::json scope;                  // what <+...> references in fetched files resolve against

  // Throws sdk::StepError (InvalidInput for a missing or malformed part, Authentication for a
  // kubeconfig that cannot be read). Credentials found are passed to ctx.mask().
  static StageContext parse(const sdk::StepContext& ctx);

  // The resolved connector `ref` (account./org. prefixes ignored); null when absent.
  const nlohmann::json* connector(const std::string& ref) const;
  // Whether the stage has a service (K8sScale and K8sDelete by name do without one).
  bool has_service() const { return service.is_object() && !service.empty(); }
};

// The cluster a K8sCluster connector describes. `mask` receives every credential value.
kube::ClusterConfig cluster_from_connector(const nlohmann::json& connector,
                                           const std::function<void(const std::string&)>& mask);

} // namespace capstan::plugins::kubernetes
