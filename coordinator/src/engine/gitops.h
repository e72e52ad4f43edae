// GitOps in the engine: the clusters a GitOps stage deploys to, what GitOps tasks carry in
// their context (clusters, pull-request records, a reserved pull-request number) and the records
// their results bring back. The coordinator never talks to Git: see docs/gitops.md.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "capstan/plugin/v1/plugin.pb.h"
#include "store/store.h"

namespace capstan::engine {

// The GitOps clusters of a stage: those named (each must exist and serve `environment`), or
// with deploy_to_all every cluster that serves it. Each is {identifier, name, connectorRef,
// server}. On failure returns an empty list and sets `error`.
nlohmann::json stage_gitops_clusters(store::Store& store, const std::vector<std::string>& named,
                                     bool deploy_to_all, const std::string& environment,
                                     std::string& error);

// The API server URL of a K8sCluster connector, as Argo CD's destination.server names it
// (without a trailing '/'): ManualConfig's masterUrl; https://kubernetes.default.svc for
// InheritFromDelegate; for Kubeconfig, the server of its context as a delegate that loaded it
// last reported, else as read here (inline content, or a path readable on this host). "" when
// unknown.
std::string cluster_api_server(store::Store& store, const nlohmann::json& connector_model);

// Whether a step type opens pull requests (UpdateReleaseRepo, RevertPR and their GitOps* names).
bool opens_pull_requests(const std::string& step_type);
bool is_gitops_step(const std::string& step_type);

// The key of the service's release repository in a plugin context: its connector's URL (with
// repoName for Account connectors) without user-info; "" when there is none.
std::string release_repository(const nlohmann::json& context);

// The lock key of a release repository URL (from release_repository): scheme and host in lower
// case, scp-like "user@host:path" as ssh://host/path, no user-info, trailing "/" or ".git".
// Update Release Repo and Revert PR tasks with the same key never run at the same time.
std::string repository_lock_key(const std::string& url);

// Completes context.gitOps for a GitOps step: each cluster gets the stage's environment, and
// `pullRequests` carries the execution's records and, for steps that open one, a reserved
// number of the release repository.
void add_gitops_context(store::Store& store, const std::string& execution_id,
                        const std::string& step_type, nlohmann::json& context);

// Stores the PullRequest records of a step's result; returns why any record was refused.
std::vector<std::string> store_step_records(store::Store& store,
                                            const plugin::v1::StepResult& result,
                                            const std::string& execution_id,
                                            const std::string& step);

} // namespace capstan::engine
