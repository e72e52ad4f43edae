// The GitOps pipeline steps against the live agent: a real coordinator, a delegate hosting the
// gitops plugin (steps and reconciler), capstan-sandbox and a release repository behind git
// daemon. MergePR refreshes the applications following the merged branch at once;
// UpdateGitOpsApp and GitOpsSync act on the coordinator's Applications; FetchLinkedApps lists
// the live applications of the stage's clusters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <capstan/testing/git_servers.h>
#include <capstan/testing/sandbox.h>

#include <iostream>

#include "../stack.h"

namespace {

namespace fs = std::filesystem;
using capstan::testing::git;
using capstan::testing::GitDaemon;
using capstan::testing::Sandbox;
using capstan::testing::Stack;
using capstan::testing::TempDir;
using capstan::testing::wait_until;
using nlohmann::json;
using ::testing::HasSubstr;

std::string deployment(const std::string& name, const std::string& image) {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name +
         "\nspec:\n  replicas: 1\n  progressDeadlineSeconds: 2\n  selector:\n    matchLabels: "
         "{app: " +
         name + "}\n  template:\n    metadata:\n      labels: {app: " + name +
         "}\n    spec:\n      containers:\n      - name: main\n        image: " + image + "\n";
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class StepsTest : public ::testing::Test {
protected:
  void SetUp() override {
    sandbox_ = std::make_unique<Sandbox>(dir_ / "sandbox");
    bare_ = capstan::testing::make_remote(
        dir_ / "srv", "release.git",
        {{{"apps/demo/web.yaml", deployment("web", "nginx:1.25")},
          {"apps/other/web.yaml", deployment("other", "nginx:1.25")}}});
    daemon_ = std::make_unique<GitDaemon>(dir_ / "srv");
    git({"clone", "-q", bare_.string(), (dir_ / "work").string()});
    stack_.start_coordinator();
    // Polling every 10 minutes: anything faster comes from the coordinator.
    capstan::testing::write_file(dir_ / "delegate.yaml",
                                 "plugins:\n  gitops:\n    pollIntervalMs: 600000\n");
    delegate_ = &stack_.start_delegate("gitops", {capstan::testing::plugin_dir()}, 2,
                                       {"--config", (dir_ / "delegate.yaml").string()});
    ASSERT_TRUE(stack_.wait_for_delegates(1)) << stack_.coordinator().log();
  }
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "coordinator log:\n" << stack_.coordinator().log() << "\n";
      std::cerr << "delegate log:\n" << delegate_->log() << "\n";
    }
  }
  std::string url() const { return daemon_->url("release.git"); }
  // Commits files to a branch of the release repository; returns the commit.
  std::string commit(const std::string& branch,
                     const std::vector<std::pair<std::string, std::string>>& files) {
    const fs::path work = dir_ / "work";
    git({"checkout", "-q", "-B", branch, "origin/main"}, work);
    for (const auto& [path, text] : files) capstan::testing::write_file(work / path, text);
    git({"add", "-A"}, work);
    git({"commit", "-q", "-m", "change"}, work);
    git({"push", "-q", "-f", "origin", "HEAD:" + branch}, work);
    return trimmed(git({"rev-parse", "HEAD"}, work));
  }
  std::string head() const { return trimmed(git({"rev-parse", "main"}, bare_)); }

  // The release repo connector, the GitOps service, the environment and the sandbox cluster.
  std::string objects_yaml() const {
    return "connector:\n  identifier: release_repo\n  name: release repo\n  type: Git\n"
           "  spec:\n    url: " +
           url() +
           "\n    connectionType: Repo\n    branchName: main\n    type: Http\n    spec: {}\n---\n"
           "connector:\n  identifier: sandbox_api\n  name: sandbox API\n  type: K8sCluster\n"
           "  spec:\n    credential:\n      type: Kubeconfig\n      spec:\n        path: " +
           sandbox_->kubeconfig().string() +
           "\n---\ngitopsCluster:\n  identifier: sandbox\n  name: sandbox\n"
           "  connectorRef: sandbox_api\n  environments: [dev]\n---\n"
           "environment:\n  identifier: dev\n  name: dev\n  type: PreProduction\n---\n"
           "service:\n  identifier: web\n  name: web\n  gitOpsEnabled: true\n"
           "  serviceDefinition:\n    type: Kubernetes\n    spec:\n      manifests:\n"
           "        - manifest:\n            identifier: release\n            type: ReleaseRepo\n"
           "            spec:\n              store:\n                type: Git\n"
           "                spec:\n                  connectorRef: release_repo\n"
           "                  gitFetchType: Branch\n                  branch: main\n"
           "                  paths: [apps/demo/web.yaml]\n";
  }
  std::string app_yaml(const std::string& name, const std::string& path, bool automated) const {
    return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: " + name +
           "\nspec:\n  project: default\n  source:\n    repoURL: " + url() +
           "\n    targetRevision: main\n    path: " + path +
           "\n  destination:\n    name: sandbox\n    namespace: demo\n  syncPolicy:\n" +
           (automated ? "    automated: {prune: true}\n" : "") +
           "    syncOptions: [CreateNamespace=true]\n";
  }
  // A pipeline of one GitOps stage on the sandbox cluster with `steps` (YAML list items,
  // indented for `steps:`).
  static std::string pipeline_yaml(const std::string& id, const std::string& steps) {
    return "pipeline:\n  identifier: " + id + "\n  name: " + id +
           "\n  stages:\n    - stage:\n        identifier: deploy\n        name: deploy\n"
           "        type: Deployment\n        spec:\n          deploymentType: Kubernetes\n"
           "          gitOpsEnabled: true\n          service:\n            serviceRef: web\n"
           "          environment:\n            environmentRef: dev\n"
           "            gitOpsClusters:\n              - identifier: sandbox\n"
           "          execution:\n            steps:\n" +
           steps;
  }
  json app(const std::string& name) { return stack_.get("/api/v1/apps/" + name); }
  static bool synced_healthy(const json& a, const std::string& revision) {
    const json s = a.value("status", json::object());
    return s.value("sync", json::object()).value("status", "") == "Synced" &&
           s.value("health", json::object()).value("status", "") == "Healthy" &&
           s.value("sync", json::object()).value("revision", "") == revision;
  }
  std::string image(const std::string& deployment) {
    auto r = sandbox_->kubectl({"get", "deployment", deployment, "-n", "demo", "-o",
                                "jsonpath={.spec.template.spec.containers[0].image}"});
    return r.status.success() ? r.out : "";
  }
  json run(const std::string& pipeline) {
    auto started = stack_.post("/api/v1/pipelines/" + pipeline + "/executions", json::object());
    EXPECT_EQ(stack_.last_status() / 100, 2) << started.dump(2);
    return stack_.wait_for_end(started["id"]);
  }

  TempDir dir_{"capstan-gitops-steps"};
  std::unique_ptr<Sandbox> sandbox_;
  fs::path bare_;
  std::unique_ptr<GitDaemon> daemon_;
  Stack stack_{dir_.path()};
  capstan::testing::Daemon* delegate_ = nullptr;
};

// Update Release Repo edits the Deployment's image in a pull request; Merge PR merges it and the
// coordinator refreshes the application following main at once (the delegate polls only every
// 10 minutes), so the new image runs without any webhook.
TEST_F(StepsTest, MergePRRefreshesTheApplicationsOfItsBranch) {
  auto applied = stack_.apply_text("objects.yaml",
                                   objects_yaml() + "---\n" + app_yaml("demo", "apps/demo", true) +
                                       "---\n" + pipeline_yaml("release", R"(              - step:
                  type: UpdateReleaseRepo
                  name: Update Release Repo
                  identifier: update
                  timeout: 2m
                  spec:
                    variables:
                      - name: spec.template.spec.containers[0].image
                        type: String
                        value: nginx:1.26
              - step:
                  type: MergePR
                  name: Merge PR
                  identifier: merge
                  timeout: 2m
                  spec:
                    deleteSourceBranch: true
)"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  json a;
  const std::string first = head();
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy(a = app("demo"), first); }, std::chrono::seconds(60)))
      << a.dump(2);
  ASSERT_EQ(image("web"), "nginx:1.25");

  auto e = run("release");
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2) << stack_.logs(e["id"]);
  const std::string merged = e["stages"][0]["steps"][1]["outputs"]["commitId"];
  ASSERT_EQ(head(), merged);
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy(a = app("demo"), merged); }, std::chrono::seconds(30)))
      << a.dump(2);
  EXPECT_EQ(image("web"), "nginx:1.26");
  EXPECT_THAT(stack_.coordinator().log(), HasSubstr("MergePR moved main of"));
}

} // namespace
