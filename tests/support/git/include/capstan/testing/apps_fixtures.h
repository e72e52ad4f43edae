// What GitOps tests and benchmarks commit and apply: Kubernetes manifests for a release
// repository, the Capstan objects a GitOps cluster and a GitOps service are made of, Argo CD
// Applications, and a release repository to push commits to.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "capstan/testing/git_servers.h"
#include "capstan/testing/testing.h"

namespace capstan::testing {

// A ConfigMap holding `value` under data.value; `annotations` are extra lines of
// metadata.annotations, indented by four spaces.
inline std::string configmap_yaml(const std::string& name, const std::string& value,
                                  const std::string& annotations = "") {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name +
         (annotations.empty() ? "" : "\n  annotations:\n" + annotations) + "\ndata:\n  value: \"" +
         value + "\"\n";
}

// A Deployment of `replicas` pods of one container `main` running `image`, labelled app=<name>;
// with progressDeadlineSeconds when `progress_deadline` > 0 (Degraded that long after its
// rollout stops progressing).
inline std::string deployment_yaml(const std::string& name, const std::string& image,
                                   int replicas = 1, int progress_deadline = 0) {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name +
         "\nspec:\n  replicas: " + std::to_string(replicas) +
         (progress_deadline > 0
              ? "\n  progressDeadlineSeconds: " + std::to_string(progress_deadline)
              : std::string()) +
         "\n  selector:\n    matchLabels: {app: " + name +
         "}\n  template:\n    metadata:\n      labels: {app: " + name +
         "}\n    spec:\n      containers:\n      - name: main\n        image: " + image + "\n";
}

// An environment, a K8sCluster connector `sandbox_api` reading `kubeconfig`, and the GitOps
// cluster `cluster` on it, linked to the environment.
inline std::string gitops_cluster_yaml(const std::string& kubeconfig, const std::string& cluster,
                                       const std::string& environment) {
  return "environment:\n  identifier: " + environment + "\n  name: " + environment +
         "\n  type: PreProduction\n---\n"
         "connector:\n  identifier: sandbox_api\n  name: sandbox API\n  type: K8sCluster\n"
         "  spec:\n    credential:\n      type: Kubeconfig\n      spec:\n        path: " +
         kubeconfig + "\n---\ngitopsCluster:\n  identifier: " + cluster + "\n  name: " + cluster +
         "\n  connectorRef: sandbox_api\n  environments: [" + environment + "]\n";
}

// The Git connector `release_repo` of a release repository.
inline std::string release_repo_connector_yaml(const std::string& url) {
  return "connector:\n  identifier: release_repo\n  name: release repo\n  type: Git\n"
         "  spec:\n    url: " +
         url + "\n    connectionType: Repo\n    branchName: main\n    type: Http\n    spec: {}\n";
}

// A GitOps service whose ReleaseRepo manifest is `path` on main of the release_repo connector.
// `more` follows the manifests (more manifests, or `variables:` of the service spec, indented
// for spec).
inline std::string release_repo_service_yaml(const std::string& service, const std::string& path,
                                             const std::string& more = "") {
  return "service:\n  identifier: " + service + "\n  name: " + service +
         "\n  gitOpsEnabled: true\n"
         "  serviceDefinition:\n    type: Kubernetes\n    spec:\n      manifests:\n"
         "        - manifest:\n            identifier: release\n            type: ReleaseRepo\n"
         "            spec:\n              store:\n                type: Git\n"
         "                spec:\n                  connectorRef: release_repo\n"
         "                  gitFetchType: Branch\n                  branch: main\n"
         "                  paths:\n                    - " +
         path + "\n" + more;
}

// An Argo CD Application of `path` on main of `url`, to namespace `ns` of the GitOps cluster
// `cluster`; `sync_policy` is the body of spec.syncPolicy (indented by four spaces).
inline std::string application_yaml(const std::string& name, const std::string& url,
                                    const std::string& path, const std::string& cluster,
                                    const std::string& ns, const std::string& sync_policy) {
  return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: " + name +
         "\nspec:\n  project: default\n  source:\n    repoURL: " + url +
         "\n    targetRevision: main\n    path: " + path +
         "\n  destination:\n    name: " + cluster + "\n    namespace: " + ns + "\n  syncPolicy:\n" +
         sync_policy;
}

// A bare release repository seeded with `files`, and a clone of it to push commits from.
class ReleaseRemote {
public:
  explicit ReleaseRemote(const FileSet& files) {
    bare_ = make_remote(dir_.path(), "release.git", {files});
    git({"clone", "-q", bare_.string(), (dir_ / "work").string()});
  }
  std::string url() const { return "file://" + bare_.string(); }
  const std::filesystem::path& bare() const { return bare_; }
  // Writes `write`, removes `remove` (paths in the repository), commits and pushes to main;
  // returns the new head.
  std::string commit(const FileSet& write, const std::vector<std::string>& remove = {}) {
    for (const auto& [path, text] : write) write_file(dir_ / "work" / path, text);
    for (const auto& path : remove) std::filesystem::remove(dir_ / "work" / path);
    git({"add", "-A"}, dir_ / "work");
    git({"commit", "-q", "-m", "change"}, dir_ / "work");
    git({"push", "-q", "origin", "HEAD:main"}, dir_ / "work");
    return head();
  }
  std::string head() const {
    auto h = git({"rev-parse", "main"}, bare_);
    while (!h.empty() && (h.back() == '\n' || h.back() == ' ')) h.pop_back();
    return h;
  }

private:
  TempDir dir_{"capstan-release-remote"};
  std::filesystem::path bare_;
};

} // namespace capstan::testing
