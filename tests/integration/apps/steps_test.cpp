// The GitOps pipeline steps against the live agent: a real coordinator, a delegate hosting the
// gitops plugin (steps and reconciler), capstan-sandbox and a release repository behind git
// daemon. MergePR refreshes the applications following the merged branch at once;
// UpdateGitOpsApp and GitOpsSync act on the coordinator's Applications; FetchLinkedApps lists
// the live applications of the stage's clusters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <capstan/testing/apps_fixtures.h>
#include <capstan/testing/git_servers.h>
#include <capstan/testing/sandbox.h>

#include <iostream>

#include "../stack.h"

namespace {

namespace fs = std::filesystem;
using namespace capstan::testing;
using nlohmann::json;
using ::testing::HasSubstr;

// A Deployment that turns Degraded 2 s (by default) after its rollout stops progressing.
std::string deployment(const std::string& name, const std::string& image, int deadline = 2) {
  return deployment_yaml(name, image, 1, deadline);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class StepsTest : public ::testing::Test {
protected:
  void SetUp() override {
    // The default failure rules, and images ending ":fails" exit with an error (failing hooks).
    // Pods of the restart test take a while to become ready, so the coordinator can be killed
    // while the step waits.
    std::string config = capstan::testing::kFastSandbox;
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (test.find("Abort") != std::string::npos) {
      // Pods that take long to be ready: a sync waits on its first wave until terminated.
      config.replace(config.find("podReadyDelay: 30ms"), std::string("podReadyDelay: 30ms").size(),
                     "podReadyDelay: 300s");
    } else if (test.find("Restart") != std::string::npos) {
      config.replace(config.find("podReadyDelay: 30ms"), std::string("podReadyDelay: 30ms").size(),
                     "podReadyDelay: 3s");
    }
    sandbox_ = std::make_unique<Sandbox>(
        dir_ / "sandbox", config +
                              "failureRules:\n  - image: \"*:pullfail\"\n    reason: ErrImagePull\n"
                              "  - image: \"*:fails\"\n    reason: Error\n    exitCode: 2\n"
                              "    message: migration failed\n");
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
    return release_repo_connector_yaml(url()) + "---\n" +
           gitops_cluster_yaml(sandbox_->kubeconfig().string(), "sandbox", "dev") + "---\n" +
           release_repo_service_yaml("web", "apps/demo/web.yaml");
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
  // A GitOpsSync step for pipeline_yaml up to its `spec:` (its fields follow, indented by 20
  // spaces); without a timeout when `timeout` is empty.
  static std::string sync_step_head(const std::string& timeout = "2m",
                                    const std::string& identifier = "sync",
                                    const std::string& name = "GitOps Sync") {
    return "              - step:\n                  type: GitOpsSync\n                  name: " +
           name + "\n                  identifier: " + identifier + "\n" +
           (timeout.empty() ? "" : "                  timeout: " + timeout + "\n") +
           "                  spec:\n";
  }
  // A GitOpsSync step of the applications `list` ("[demo]"), for pipeline_yaml.
  static std::string sync_step(const std::string& list) {
    return sync_step_head() + "                    applicationsList: " + list + "\n";
  }
  json app(const std::string& name) { return stack_.get("/api/v1/apps/" + name); }
  static std::string sync_status(const json& a) {
    return a.value("status", json::object()).value("sync", json::object()).value("status", "");
  }
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

// UpdateGitOpsApp points a manually synced application at a branch with a new image; GitOpsSync
// syncs it through its delegate and waits until the Deployment in the sandbox runs the image.
// The outputs carry the new target, the synced revision and the statuses.
TEST_F(StepsTest, UpdateGitOpsAppThenGitOpsSyncDeploysTheBranch) {
  const std::string release =
      commit("release-2", {{"apps/demo/web.yaml", deployment("web", "nginx:1.27")}});
  auto applied = stack_.apply_text("objects.yaml",
                                   objects_yaml() + "---\n" + app_yaml("demo", "apps/demo", false) +
                                       "---\n" + pipeline_yaml("promote", R"(              - step:
                  type: UpdateGitOpsApp
                  name: Update GitOps App
                  identifier: update
                  timeout: 1m
                  spec:
                    applicationName: demo
                    agentId: gitops
                    targetRevision: <+pipeline.variables.branch>
                    helm:
                      parameters: []
                      fileParameters: []
)" + sync_step_head() + R"(                    prune: true
                    dryRun: false
                    applyOnly: false
                    forceApply: false
                    applicationsList:
                      - applicationName: demo
                        agentId: gitops
                    retryStrategy: {}
                    syncOptions:
                      autoCreateNamespace: true
                      prunePropagationPolicy: foreground
  variables:
    - name: branch
      type: String
      value: release-2
)"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  json a;
  ASSERT_TRUE(wait_until([&] { return sync_status(a = app("demo")) == "OutOfSync"; },
                         std::chrono::seconds(60)))
      << a.dump(2);

  auto e = run("promote");
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2) << stack_.logs(e["id"]);
  EXPECT_EQ(image("web"), "nginx:1.27");
  const json update = e["stages"][0]["steps"][0]["outputs"];
  EXPECT_EQ(update["targetRevision"], "release-2") << update.dump(2);
  EXPECT_EQ(update["previousTargetRevision"], "main");
  const json sync = e["stages"][0]["steps"][1]["outputs"];
  auto synced = json::parse(sync["applications"].get<std::string>());
  ASSERT_EQ(synced.size(), 1u) << sync.dump(2);
  EXPECT_EQ(synced[0]["name"], "demo");
  EXPECT_EQ(synced[0]["revision"], release);
  EXPECT_EQ(synced[0]["syncStatus"], "Synced");
  EXPECT_EQ(synced[0]["healthStatus"], "Healthy");
  // The stored application follows the branch now.
  a = app("demo");
  EXPECT_EQ(a["spec"]["source"]["targetRevision"], "release-2") << a.dump(2);
  EXPECT_TRUE(synced_healthy(a, release)) << a.dump(2);
  EXPECT_THAT(stack_.logs(e["id"]), HasSubstr("application demo: sync succeeded at " + release));
}

// A sync whose Deployment cannot become healthy (its image never pulls) fails the step with the
// application's health message, as error type Verification; a regex matching nothing and an
// application no delegate holds fail clearly before anything is synced.
TEST_F(StepsTest, GitOpsSyncFailsWithTheApplicationsCondition) {
  commit("broken", {{"apps/demo/web.yaml", deployment("web", "nginx:pullfail")}});
  auto applied = stack_.apply_text(
      "objects.yaml",
      objects_yaml() + "---\n" + app_yaml("demo", "apps/demo", false) +
          "---\n" + pipeline_yaml("broken", R"(              - step:
                  type: UpdateGitOpsApp
                  name: Update GitOps App
                  identifier: update
                  spec:
                    applicationName: demo
                    targetRevision: broken
)" + sync_step("[demo]") + R"(            rollbackSteps:
              - step:
                  type: UpdateGitOpsApp
                  name: Undo
                  identifier: undo
)" + sync_step_head("2m", "resync", "Resync") + R"(                    applicationsList: [demo]
)") + "---\n" +
          pipeline_yaml("nothing",
                        sync_step_head("") + R"(                    applicationRegex: ^payments-
)"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  json a;
  ASSERT_TRUE(wait_until(
      [&] {
        return !(a = app("demo"))["status"]
                    .value("sync", json::object())
                    .value("revision", "")
                    .empty();
      },
      std::chrono::seconds(60)))
      << a.dump(2);

  auto e = run("broken");
  ASSERT_EQ(e["status"], "Failed") << e.dump(2);
  const json step = e["stages"][0]["steps"][1];
  EXPECT_EQ(step["status"], "Failed") << step.dump(2);
  EXPECT_EQ(step["errorType"], "Verification") << step.dump(2);
  EXPECT_THAT(step["message"].get<std::string>(), HasSubstr("application demo: Degraded"));
  EXPECT_THAT(step["message"].get<std::string>(), HasSubstr("progress deadline")) << step.dump(2);
  // The stage rolled back: the empty UpdateGitOpsApp put the application back on main, and the
  // sync brought the old image back.
  for (const auto& st : e["stages"][0]["steps"]) {
    if (st["identifier"] == "undo" || st["identifier"] == "resync") {
      EXPECT_EQ(st["status"], "Succeeded") << st.dump(2) << stack_.logs(e["id"]);
    }
  }
  EXPECT_EQ(app("demo")["spec"]["source"]["targetRevision"], "main");
  EXPECT_EQ(image("web"), "nginx:1.25");

  e = run("nothing");
  ASSERT_EQ(e["status"], "Failed") << e.dump(2);
  EXPECT_EQ(e["stages"][0]["steps"][0]["errorType"], "InvalidInput");
  EXPECT_THAT(e["stages"][0]["steps"][0]["message"].get<std::string>(),
              HasSubstr("applicationRegex '^payments-' matches no application of the stage's "
                        "clusters (sandbox) (applications: demo)"));
  // The coordinator-run steps' schemas are in the step-type catalog.
  json schema;
  const json types = stack_.get("/api/v1/steptypes");
  for (const auto& t : types["items"]) {
    if (t["type"] == "GitOpsSync") schema = t;
  }
  EXPECT_EQ(schema["runsOn"], "coordinator") << schema.dump(2);
  EXPECT_TRUE(schema["specSchema"]["properties"].contains("applicationRegex")) << schema.dump(2);

  // Invalid specs are refused at apply, with the file, line and column.
  auto refused = stack_.apply_text(
      "bad.yaml",
      pipeline_yaml("bad", sync_step_head("") + R"(                    applicationRegex: "(unclosed"
)"));
  EXPECT_EQ(stack_.last_status(), 422) << refused.dump(2);
  EXPECT_THAT(refused.dump(), HasSubstr("bad.yaml:25:39"));
  EXPECT_THAT(refused.dump(), HasSubstr("applicationRegex is not a valid regular expression"));
  refused = stack_.apply_text("bad.yaml", pipeline_yaml("bad", R"(              - step:
                  type: UpdateGitOpsApp
                  name: Update
                  identifier: update
                  spec:
                    applicationName: demo
                    targetRevison: main
)"));
  EXPECT_EQ(stack_.last_status(), 422) << refused.dump(2);
  EXPECT_THAT(refused.dump(), HasSubstr("bad.yaml:"));
  EXPECT_THAT(refused.dump(), HasSubstr("targetRevison")) << refused.dump(2);
}

// FetchLinkedApps lists the live applications of the stage's clusters with their status (not
// those of other destinations, after a restart and a change of destination too); a GitOpsSync
// without a list syncs what it fetched.
TEST_F(StepsTest, FetchLinkedAppsListsLiveApplicationsAndGitOpsSyncTakesThem) {
  const std::string fetch_step = R"(              - step:
                  type: FetchLinkedApps
                  name: Fetch Linked Apps
                  identifier: fetch
                  timeout: 1m
                  spec: {}
)";
  std::string elsewhere = app_yaml("elsewhere", "apps/other", false);
  elsewhere.replace(elsewhere.find("name: sandbox"), 13, "server: https://elsewhere.example:6443/");
  auto applied = stack_.apply_text(
      "objects.yaml", objects_yaml() + "---\n" + app_yaml("demo", "apps/demo", true) + "---\n" +
                          app_yaml("other", "apps/other", false) + "---\n" + elsewhere + "---\n" +
                          pipeline_yaml("fetch", fetch_step + sync_step_head() +
                                                     "                    prune: false\n") +
                          "---\n" + pipeline_yaml("fetch_only", fetch_step));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  json a;
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy(a = app("demo"), head()); }, std::chrono::seconds(60)))
      << a.dump(2);
  ASSERT_TRUE(wait_until([&] { return sync_status(a = app("other")) == "OutOfSync"; },
                         std::chrono::seconds(60)))
      << a.dump(2);

  auto e = run("fetch");
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2) << stack_.logs(e["id"]);
  const json out = e["stages"][0]["steps"][0]["outputs"];
  EXPECT_EQ(out["appCount"], "2") << out.dump(2);
  auto apps = json::parse(out["applications"].get<std::string>());
  ASSERT_EQ(apps.size(), 2u);
  EXPECT_EQ(apps[0]["name"], "demo");
  EXPECT_EQ(apps[0]["cluster"], "sandbox");
  EXPECT_EQ(apps[0]["syncStatus"], "Synced");
  EXPECT_EQ(apps[0]["healthStatus"], "Healthy");
  EXPECT_EQ(apps[0]["revision"], head());
  EXPECT_EQ(apps[0]["delegate"], "gitops");
  EXPECT_EQ(apps[1]["name"], "other");
  EXPECT_EQ(apps[1]["syncStatus"], "OutOfSync");
  EXPECT_EQ(json::parse(out["applicationsByCluster"].get<std::string>())["sandbox"],
            json::array({"demo", "other"}));
  // The sync took both fetched applications: "other" runs now.
  EXPECT_EQ(image("other"), "nginx:1.25");
  EXPECT_THAT(stack_.logs(e["id"]), HasSubstr("the applications step fetch fetched): demo, other"));

  // What links applications to clusters is read again at start-up, and follows a change.
  auto fetched = [&] {
    auto r = run("fetch_only");
    EXPECT_EQ(r["status"], "Succeeded") << r.dump(2) << stack_.logs(r["id"]);
    std::vector<std::string> names;
    for (const auto& f : json::parse(
             r["stages"][0]["steps"][0]["outputs"].value("applications", std::string("[]")))) {
      names.push_back(f["name"]);
    }
    return names;
  };
  stack_.kill_coordinator();
  stack_.start_coordinator();
  ASSERT_TRUE(stack_.wait_for_delegates(1)) << stack_.coordinator().log();
  EXPECT_EQ(fetched(), (std::vector<std::string>{"demo", "other"}));
  std::string moved = app_yaml("other", "apps/other", false);
  moved.replace(moved.find("name: sandbox"), 13, "server: https://elsewhere.example:6443");
  stack_.apply_text("other.yaml", moved);
  ASSERT_EQ(stack_.last_status(), 200);
  EXPECT_EQ(fetched(), (std::vector<std::string>{"demo"}));
  stack_.apply_text("other.yaml", app_yaml("other", "apps/other", false));
  ASSERT_EQ(stack_.last_status(), 200);
  EXPECT_EQ(fetched(), (std::vector<std::string>{"demo", "other"}));
}

// UpdateGitOpsApp merges Kustomize images by name into the application's own (the other images
// stay), and refuses Helm settings naming the field; the sync deploys the merged image.
TEST_F(StepsTest, UpdateGitOpsAppMergesKustomizeImagesAndRefusesHelm) {
  const std::string kz = commit("main", {{"apps/kz/kustomization.yaml", "resources: [web.yaml]\n"},
                                         {"apps/kz/web.yaml", deployment("kz", "nginx:1.25")}});
  std::string kz_app = app_yaml("kz", "apps/kz", false);
  kz_app.replace(kz_app.find("    path: apps/kz\n"), std::string("    path: apps/kz\n").size(),
                 "    path: apps/kz\n    kustomize:\n      images: [busybox:1.36, nginx:1.25]\n");
  auto applied =
      stack_.apply_text("objects.yaml", objects_yaml() + "---\n" + kz_app + "---\n" +
                                            pipeline_yaml("images", R"(              - step:
                  type: UpdateGitOpsApp
                  name: Update GitOps App
                  identifier: update
                  spec:
                    applicationName: kz
                    kustomize:
                      images:
                        - nginx:1.27
                      replicas: []
)" + sync_step("[kz]")) + "---\n" + pipeline_yaml("helm", R"(              - step:
                  type: UpdateGitOpsApp
                  name: Update GitOps App
                  identifier: update
                  spec:
                    applicationName: kz
                    helm:
                      parameters:
                        - name: image.tag
                          value: v2
)"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  json a;
  ASSERT_TRUE(wait_until([&] { return sync_status(a = app("kz")) == "OutOfSync"; },
                         std::chrono::seconds(60)))
      << a.dump(2);

  auto e = run("images");
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2) << stack_.logs(e["id"]);
  EXPECT_EQ(image("kz"), "nginx:1.27");
  EXPECT_EQ(e["stages"][0]["steps"][0]["outputs"]["kustomizeImages"],
            json::array({"busybox:1.36", "nginx:1.27"}).dump());
  EXPECT_EQ(app("kz")["spec"]["source"]["kustomize"]["images"],
            json::array({"busybox:1.36", "nginx:1.27"}));
  EXPECT_TRUE(synced_healthy(app("kz"), kz));

  e = run("helm");
  ASSERT_EQ(e["status"], "Failed") << e.dump(2);
  const json step = e["stages"][0]["steps"][0];
  EXPECT_EQ(step["errorType"], "InvalidInput");
  EXPECT_THAT(step["message"].get<std::string>(), HasSubstr("spec.helm.parameters"));
  EXPECT_THAT(step["message"].get<std::string>(), HasSubstr("not Helm charts"));
  // Nothing was stored.
  EXPECT_EQ(app("kz")["spec"]["source"].value("helm", json()), json());
}

// A sync whose PreSync hook fails is retried as the retry strategy says, then fails the step
// with the operation's message.
TEST_F(StepsTest, GitOpsSyncRetriesAFailingHookThenFails) {
  const std::string hook =
      "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n"
      "    argocd.argoproj.io/hook: PreSync\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n"
      "      restartPolicy: Never\n      containers:\n      - name: migrate\n"
      "        image: busybox:fails\n";
  commit("main", {{"apps/hooked/web.yaml", deployment("hooked", "nginx:1.25")},
                  {"apps/hooked/migrate.yaml", hook}});
  auto applied = stack_.apply_text(
      "objects.yaml",
      objects_yaml() + "---\n" + app_yaml("hooked", "apps/hooked", false) + "---\n" +
          pipeline_yaml("hooked",
                        sync_step_head() + R"(                    applicationsList: [hooked]
                    retry: true
                    retryStrategy:
                      limit: 1
                      baseBackoffDuration: 1s
                      increaseBackoffByFactor: 2
                      maxBackoffDuration: 5s
)"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  json a;
  ASSERT_TRUE(wait_until([&] { return sync_status(a = app("hooked")) == "OutOfSync"; },
                         std::chrono::seconds(60)))
      << a.dump(2);
  auto e = run("hooked");
  ASSERT_EQ(e["status"], "Failed") << e.dump(2);
  const json step = e["stages"][0]["steps"][0];
  EXPECT_EQ(step["errorType"], "Unknown") << step.dump(2);
  EXPECT_THAT(step["message"].get<std::string>(), HasSubstr("application hooked: sync Failed"));
  EXPECT_THAT(step["message"].get<std::string>(), HasSubstr("migrate")) << step.dump(2);
  const std::string logs = stack_.logs(e["id"]);
  EXPECT_THAT(logs, HasSubstr("; retrying in 1"));
  EXPECT_THAT(logs, HasSubstr("(attempt 2)"));
  // Neither failed sync is a deployment (the history lists syncs that succeeded, as Argo CD's):
  // the application's operation state is the step's second attempt.
  a = app("hooked");
  EXPECT_TRUE(a["status"].value("history", json::array()).empty()) << a.dump(2);
  EXPECT_EQ(a["status"]["operationState"]["phase"], "Failed") << a.dump(2);
  EXPECT_THAT(a["status"]["operationState"]["initiatedBy"].get<std::string>(),
              HasSubstr("step deploy.sync, attempt 2"));
}

// The coordinator is killed while a GitOpsSync step waits for its application to become
// healthy (pods take 3 s to be ready here); the restarted coordinator resumes the wait from the
// stored step and the application's reported status.
TEST_F(StepsTest, GitOpsSyncResumesAfterACoordinatorRestart) {
  const std::string slow =
      commit("main", {{"apps/demo/web.yaml", deployment("web", "nginx:1.26", 600)}});
  auto applied = stack_.apply_text("objects.yaml",
                                   objects_yaml() + "---\n" + app_yaml("demo", "apps/demo", false) +
                                       "---\n" + pipeline_yaml("sync", sync_step("[demo]")));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  json a;
  ASSERT_TRUE(wait_until([&] { return sync_status(a = app("demo")) == "OutOfSync"; },
                         std::chrono::seconds(60)))
      << a.dump(2);
  auto started = stack_.post("/api/v1/pipelines/sync/executions", json::object());
  ASSERT_EQ(stack_.last_status() / 100, 2) << started.dump(2);
  const std::string id = started["id"];
  ASSERT_TRUE(
      wait_until([&] { return stack_.logs(id).find("sync succeeded at") != std::string::npos; },
                 std::chrono::seconds(60)))
      << stack_.logs(id);
  stack_.kill_coordinator();
  stack_.start_coordinator();
  auto e = stack_.wait_for_end(id);
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2) << stack_.logs(id);
  auto synced =
      json::parse(e["stages"][0]["steps"][0]["outputs"]["applications"].get<std::string>());
  ASSERT_EQ(synced.size(), 1u);
  EXPECT_EQ(synced[0]["healthStatus"], "Healthy");
  EXPECT_EQ(synced[0]["revision"], slow);
  EXPECT_TRUE(synced_healthy(app("demo"), slow));
  EXPECT_EQ(image("web"), "nginx:1.26");
  EXPECT_THAT(stack_.coordinator().log(), HasSubstr("resuming execution " + id));
}

// GitOpsSync and UpdateGitOpsApp check the agentId they are given against the delegate holding
// the application (a wrong one changes nothing); aborting the pipeline terminates the sync running
// on that delegate (Argo CD's terminate-op): it ends Failed ("operation terminated") before its
// next wave, and the step ends Aborted.
TEST_F(StepsTest, AbortTerminatesTheSyncRunningOnTheDelegateAndAgentIdIsChecked) {
  commit("main",
         {{"apps/slow/web.yaml",
           "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: slow\n  annotations:\n"
           "    argocd.argoproj.io/sync-wave: \"0\"\nspec:\n  replicas: 1\n  selector:\n"
           "    matchLabels: {app: slow}\n  template:\n    metadata:\n      labels: {app: slow}\n"
           "    spec:\n      containers:\n      - name: main\n        image: nginx:1.25\n"},
          {"apps/slow/after.yaml",
           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n  annotations:\n"
           "    argocd.argoproj.io/sync-wave: \"1\"\ndata:\n  value: \"1\"\n"}});
  auto applied = stack_.apply_text(
      "objects.yaml",
      objects_yaml() + "---\n" + app_yaml("slow", "apps/slow", false) + "---\n" +
          pipeline_yaml("wrong_agent", sync_step("[{applicationName: slow, agentId: elsewhere}]")) +
          "---\n" +
          pipeline_yaml("slow_sync", sync_step("[{applicationName: slow, agentId: gitops}]")) +
          "---\n" + pipeline_yaml("wrong_update_agent", R"(              - step:
                  type: UpdateGitOpsApp
                  name: Update GitOps App
                  identifier: update
                  spec:
                    applicationName: slow
                    agentId: elsewhere
                    targetRevision: release-9
)"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  json a;
  ASSERT_TRUE(wait_until([&] { return sync_status(a = app("slow")) == "OutOfSync"; },
                         std::chrono::seconds(60)))
      << a.dump(2);

  auto e = run("wrong_agent");
  ASSERT_EQ(e["status"], "Failed") << e.dump(2);
  EXPECT_THAT(e["stages"][0]["steps"][0]["message"].get<std::string>(),
              HasSubstr("application 'slow' is held by agent 'gitops', not by agentId 'elsewhere'"))
      << e.dump(2);
  e = run("wrong_update_agent");
  ASSERT_EQ(e["status"], "Failed") << e.dump(2);
  EXPECT_EQ(e["stages"][0]["steps"][0]["errorType"], "InvalidInput") << e.dump(2);
  EXPECT_THAT(e["stages"][0]["steps"][0]["message"].get<std::string>(),
              HasSubstr("agentId: application 'slow' is held by agent 'gitops', not by agentId "
                        "'elsewhere'"))
      << e.dump(2);
  EXPECT_EQ(app("slow")["spec"]["source"]["targetRevision"], "main");

  auto started = stack_.post("/api/v1/pipelines/slow_sync/executions", json::object());
  ASSERT_EQ(stack_.last_status() / 100, 2) << started.dump(2);
  const std::string id = started["id"];
  // The sync applied its first wave and waits for it to become healthy.
  ASSERT_TRUE(wait_until(
      [&] {
        return sandbox_->kubectl({"get", "deployment", "slow", "-n", "demo", "-o", "name"})
            .status.success();
      },
      std::chrono::seconds(60)));
  // While it runs, the application's operation state says so, as Argo CD's does.
  json running;
  ASSERT_TRUE(wait_until(
      [&] {
        running = app("slow")["status"].value("operationState", json::object());
        return running.value("phase", "") == "Running";
      },
      std::chrono::seconds(30)))
      << running.dump(2);
  EXPECT_THAT(running.value("initiatedBy", ""), HasSubstr("step")) << running.dump(2);
  EXPECT_EQ(running.value("finishedAt", "x"), "") << running.dump(2);
  stack_.post("/api/v1/executions/" + id + "/abort", json::object());
  ASSERT_EQ(stack_.last_status(), 200);
  e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Aborted") << e.dump(2);
  EXPECT_EQ(e["stages"][0]["steps"][0]["status"], "Aborted") << e.dump(2);
  EXPECT_THAT(stack_.logs(id), HasSubstr("application slow: terminating its sync on delegate"));
  // The delegate's sync ended at once (its pods would take minutes), before the next wave: it is
  // the application's operation state, and no deployment in its history.
  json op;
  ASSERT_TRUE(wait_until(
      [&] {
        op = app("slow")["status"].value("operationState", json::object());
        return op.value("message", "") == "operation terminated";
      },
      std::chrono::seconds(30)))
      << op.dump(2);
  EXPECT_EQ(op["phase"], "Failed");
  for (const auto& entry : app("slow")["status"].value("history", json::array())) {
    EXPECT_EQ(entry["phase"], "Succeeded") << entry.dump(2);
  }
  EXPECT_FALSE(sandbox_->kubectl({"get", "configmap", "after", "-n", "demo", "-o", "name"})
                   .status.success());
  // Nothing runs any more: terminating is an error that says so, and how the last one ended.
  auto r = stack_.post("/api/v1/apps/slow/terminate-op", json::object());
  EXPECT_EQ(stack_.last_status(), 422) << r.dump(2);
  EXPECT_THAT(r.dump(), HasSubstr("unable to terminate the operation of application 'slow': no "
                                  "operation is in progress (its last operation, a sync of "))
      << r.dump(2);
  EXPECT_THAT(r.dump(), HasSubstr("ended Failed at ")) << r.dump(2);
  auto cli = stack_.cli({"apps", "terminate-op", "slow"});
  EXPECT_EQ(cli.status.exit_code, 2) << cli.out; // a request the coordinator refuses
  EXPECT_THAT(cli.err, HasSubstr("no operation is in progress")) << cli.err;
}

} // namespace
