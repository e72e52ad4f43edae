// What a GitOps step works on, read from the task's context: the service's release (or
// deployment) repository with its connector's credentials, the pull-request provider, and the
// GitOps clusters the stage deploys to.
#pragma once

#include <capstan/git/remote.h>
#include <capstan/scm/provider.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace capstan::plugins::gitops {

// Where pull requests of a repository live.
enum class ProviderKind { kLocal, kGithub, kGitlab };
const char* to_string(ProviderKind kind);

struct RepoTarget {
  std::string manifest;   // the manifest's identifier
  std::string connector;  // the connector's identifier
  std::string repository; // key of the repository's pull requests: its URL without credentials
  git::RemoteOptions remote;
  ProviderKind provider = ProviderKind::kLocal;
  scm::HttpProviderConfig api; // github / gitlab
  std::string branch;          // the branch pull requests target
  std::vector<std::string> paths;
  std::vector<std::string> secrets; // credential values, to be masked
};

// The service's manifest of `type` ("ReleaseRepo" or "DeploymentRepo") and its connector from
// context.service.manifests and context.connectors. Throws sdk::StepError (InvalidInput) naming
// what is missing.
RepoTarget repo_target(const nlohmann::json& context, const std::string& type);

// A GitOps cluster of the stage, with the environment (and group) it is linked to.
struct Cluster {
  std::string identifier;
  std::string name;
  std::string server; // the API server, from the cluster's K8sCluster connector ("" if unknown)
  std::string env_identifier;
  std::string env_name;
  std::string env_type;
  nlohmann::json env_variables = nlohmann::json::object();
  std::string envgroup_identifier;
  std::string envgroup_name;
};

// context.gitOps.clusters; when the context names none, one pseudo-cluster for the stage's
// environment (so paths using only <+env.*> still resolve).
std::vector<Cluster> clusters(const nlohmann::json& context);

// Resolves <+cluster.name|identifier>, <+env.name|identifier|type>, <+env.variables.NAME> and
// <+envgroup.name|identifier> in `text` for one cluster; `what` names the text in errors
// ("path 'a/<+env.name>.json'", "variable 'region'"). A text that is one expression alone keeps
// its value's type (a Number environment variable stays a number). Throws sdk::StepError
// (InvalidInput) for any other expression or a value the cluster does not have.
nlohmann::json resolve_for_cluster(const std::string& text, const Cluster& cluster,
                                   const std::string& what);

// resolve_for_cluster() on a release-repo path, as text.
std::string resolve_path(const std::string& path, const Cluster& cluster);

} // namespace capstan::plugins::gitops
