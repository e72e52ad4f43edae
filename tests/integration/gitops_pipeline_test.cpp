// A GitOps PR pipeline end to end: coordinator and delegate processes, the gitops plugin, a
// release repo behind git daemon. The coordinator keeps the `local` pull requests; the CLI lists
// them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capstan/testing/apps_fixtures.h"
#include "capstan/testing/git_servers.h"
#include "capstan/testing/testing.h"
#include "stack.h"

namespace capstan::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

std::string env_config(const std::string& env) {
  return "{\n  \"imageTag\": \"v1.9.0\",\n  \"replicas\": 2,\n  \"cluster\": {\n    \"name\": \"" +
         env + "\",\n    \"address\": \"https://127.0.0.1:6443\"\n  }\n}\n";
}

// A pipeline whose one GitOps stage starts with an Update Release Repo step, then `more` steps.
std::string pipeline_yaml(const std::string& identifier, const std::string& more) {
  return R"(---
pipeline:
  identifier: )" +
         identifier + R"(
  name: )" +
         identifier + R"(
  variables:
    - name: imageTag
      type: String
      value: <+input>
  stages:
    - stage:
        identifier: deploy
        name: deploy
        type: Deployment
        spec:
          deploymentType: Kubernetes
          gitOpsEnabled: true
          service:
            serviceRef: guestbook
          environment:
            environmentRef: prod
            deployToAll: true
          execution:
            steps:
              - step:
                  type: GitOpsUpdateReleaseRepo
                  name: Update Release Repo
                  identifier: updateReleaseRepo
                  timeout: 2m
                  spec:
                    variables:
                      - name: imageTag
                        type: String
                        value: <+pipeline.variables.imageTag>
)" + more;
}

std::string objects_yaml(const std::string& url) {
  std::string y = capstan::testing::release_repo_connector_yaml(url) + R"(---
connector:
  identifier: cluster_api
  name: cluster API
  type: K8sCluster
  spec:
    credential:
      type: Kubeconfig
      spec:
        path: /nonexistent/kubeconfig
---
)" +
                  capstan::testing::release_repo_service_yaml(
                      "guestbook", "cluster-config/<+cluster.name>/config.json") +
                  R"(        - manifest:
            identifier: appset
            type: DeploymentRepo
            spec:
              store:
                type: Git
                spec:
                  connectorRef: release_repo
                  gitFetchType: Branch
                  branch: main
                  paths:
                    - appsets/guestbook.yaml
      variables:
        - name: replicas
          type: String
          value: "2"
---
environment:
  identifier: prod
  name: prod
  type: Production
  variables:
    - name: replicas
      type: String
      value: "5"
)";
  for (const char* c : {"dev", "staging", "prod"}) {
    y += std::string("---\ngitopsCluster:\n  identifier: ") + c + "_cluster\n  name: " + c +
         "\n  connectorRef: cluster_api\n  environments: [prod]\n";
  }
  y += pipeline_yaml("guestbook_pr", R"(              - step:
                  type: MergePR
                  name: Merge PR
                  identifier: mergePR
                  timeout: 2m
                  spec:
                    deleteSourceBranch: true
              - step:
                  type: RevertPR
                  name: Revert PR
                  identifier: revertPR
                  timeout: 2m
                  spec:
                    commitId: <+pipeline.stages.deploy.spec.execution.steps.mergePR.output.commitId>
                    prTitle: Revert <+pipeline.variables.imageTag>
              - step:
                  type: FetchLinkedApps
                  name: Fetch Linked Apps
                  identifier: fetchLinkedApps
                  timeout: 2m
                  spec: {}
)");
  return y;
}

const std::string kAppSet = R"(apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: guestbook
spec:
  generators:
    - git:
        repoURL: https://example.invalid/release.git
        revision: main
        files:
          - path: "cluster-config/**/config.json"
  template:
    metadata:
      name: "guestbook-{{cluster.name}}"
    spec:
      project: default
      source:
        repoURL: https://example.invalid/release.git
        targetRevision: main
        path: apps/guestbook
      destination:
        name: "{{cluster.name}}"
        namespace: guestbook
)";

TEST(GitOpsPipeline, UpdatesMergesRevertsAndRecordsPullRequests) {
  TempDir dir("capstan-gitops-e2e");
  auto bare = make_remote(dir / "srv", "release.git",
                          {{{"cluster-config/dev/config.json", env_config("dev")},
                            {"cluster-config/staging/config.json", env_config("staging")},
                            {"cluster-config/prod/config.json", env_config("prod")},
                            {"appsets/guestbook.yaml", kAppSet}}});
  GitDaemon daemon(dir / "srv");
  fs::create_directories(dir / "stack");
  Stack stack(dir / "stack");
  stack.start_coordinator();
  stack.start_delegate("gitops-delegate");
  ASSERT_TRUE(stack.wait_for_delegates(1)) << stack.coordinator().log();

  write_file(dir / "objects.yaml", objects_yaml(daemon.url("release.git")));
  auto applied = stack.apply_file(dir / "objects.yaml");
  ASSERT_EQ(stack.last_status(), 200) << applied.dump(2);

  auto run = stack.post("/api/v1/pipelines/guestbook_pr/executions",
                        {{"variables", {{"imageTag", "v2.1.0"}}}});
  ASSERT_EQ(stack.last_status() / 100, 2) << run.dump(2);
  auto e = stack.wait_for_end(run["id"]);
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2) << stack.logs(run["id"]);

  // One pull request updated the three clusters' files (service variable, overridden by the
  // environment's, and the step's) and was merged; the revert waits in its own pull request.
  for (const char* c : {"dev", "staging", "prod"}) {
    EXPECT_THAT(git({"show", std::string("main:cluster-config/") + c + "/config.json"}, bare),
                HasSubstr("\"imageTag\": \"v2.1.0\",\n  \"replicas\": 5,"))
        << c;
  }
  auto prs = stack.get("/api/v1/prs");
  ASSERT_EQ(prs["items"].size(), 2u) << prs.dump(2);
  const json revert = prs["items"][0];
  const json update = prs["items"][1];
  EXPECT_EQ(update["number"], 1);
  EXPECT_EQ(update["state"], "merged");
  EXPECT_EQ(update["provider"], "local");
  EXPECT_EQ(update["repository"], daemon.url("release.git"));
  EXPECT_EQ(update["executionId"], run["id"]);
  EXPECT_EQ(revert["number"], 2);
  EXPECT_EQ(revert["state"], "open");
  EXPECT_EQ(revert["title"], "Revert v2.1.0");
  // The revert branch holds the old values; the update's branch is gone.
  const std::string revert_branch = revert["source"];
  EXPECT_THAT(git({"show", revert_branch + ":cluster-config/staging/config.json"}, bare),
              HasSubstr("v1.9.0"));
  EXPECT_EQ(git({"rev-parse", "main"}, bare), update["mergeCommit"]);
  EXPECT_THAT(git({"branch", "--list", update["source"].get<std::string>()}, bare),
              ::testing::IsEmpty());

  auto one = stack.get("/api/v1/prs/1");
  EXPECT_EQ(stack.last_status(), 200);
  EXPECT_EQ(one["mergeCommit"], update["mergeCommit"]);
  stack.get("/api/v1/prs/99");
  EXPECT_EQ(stack.last_status(), 404);

  // The linked applications of the three clusters.
  std::string logs = stack.logs(run["id"]);
  EXPECT_THAT(logs, HasSubstr("application guestbook-prod -> cluster prod_cluster"));
  EXPECT_THAT(logs, HasSubstr("application guestbook-dev -> cluster dev_cluster"));
}

json update_step(Stack& stack, const std::string& id) {
  auto e = stack.get("/api/v1/executions/" + id);
  return e["stages"][0]["steps"][0];
}

// The "Release repository" wait of the API, or null.
json repository_wait(Stack& stack) {
  const json waits = stack.get("/api/v1/waits");
  for (const auto& w : waits["items"]) {
    if (w["kind"] == "Release repository") return w;
  }
  return nullptr;
}

// Two pipelines update one release repo at once with two delegates free: the coordinator runs
// one Update Release Repo at a time, the other waits queued with the reason (also across a
// coordinator restart), and an abort releases the repository.
TEST(GitOpsPipeline, OneReleaseRepoUpdateAtATimeAcrossDelegates) {
  TempDir dir("capstan-gitops-lock");
  auto bare = make_remote(dir / "srv", "release.git",
                          {{{"cluster-config/dev/config.json", env_config("dev")},
                            {"cluster-config/staging/config.json", env_config("staging")},
                            {"cluster-config/prod/config.json", env_config("prod")},
                            {"appsets/guestbook.yaml", kAppSet}}});
  // Every push takes a while, so two updates would overlap if nothing serialised them.
  write_file(bare / "hooks" / "pre-receive", "#!/bin/sh\ncat >/dev/null\nsleep 5\n");
  fs::permissions(bare / "hooks" / "pre-receive", fs::perms::owner_all);
  GitDaemon daemon(dir / "srv");
  fs::create_directories(dir / "stack");
  Stack stack(dir / "stack");
  stack.start_coordinator();
  stack.start_delegate("delegate-a");
  stack.start_delegate("delegate-b");
  ASSERT_TRUE(stack.wait_for_delegates(2)) << stack.coordinator().log();
  write_file(dir / "objects.yaml",
             objects_yaml(daemon.url("release.git")) + pipeline_yaml("guestbook_update", ""));
  auto applied = stack.apply_file(dir / "objects.yaml");
  ASSERT_EQ(stack.last_status(), 200) << applied.dump(2);
  // The lock key: the URL without user-info and ".git".
  std::string key = daemon.url("release.git");
  key.resize(key.size() - 4);

  auto start = [&](const std::string& tag) {
    auto run = stack.post("/api/v1/pipelines/guestbook_update/executions",
                          {{"variables", {{"imageTag", tag}}}});
    EXPECT_EQ(stack.last_status() / 100, 2) << run.dump(2);
    return run["id"].get<std::string>();
  };
  const std::string first = start("v2.0.0");
  const std::string second = start("v3.0.0");
  json wait;
  ASSERT_TRUE(wait_until([&] { return !(wait = repository_wait(stack)).is_null(); },
                         std::chrono::seconds(30)))
      << stack.get("/api/v1/waits").dump(2) << update_step(stack, second).dump(2)
      << update_step(stack, first).dump(2);
  const std::string waiter = wait["execution"];
  const std::string holder = waiter == first ? second : first;
  EXPECT_EQ(wait["where"], "deploy.updateReleaseRepo");
  EXPECT_THAT(wait["details"].get<std::string>(),
              HasSubstr("waiting for release repository " + key +
                        ": step "
                        "deploy.updateReleaseRepo of guestbook_update"));
  EXPECT_THAT(wait["details"].get<std::string>(), HasSubstr(holder));
  json w = update_step(stack, waiter);
  EXPECT_EQ(w["status"], "Queued") << w.dump(2);
  EXPECT_EQ(w["releaseRepository"], key);
  // The holder took the lock when it was dispatched; its delegate reports it running soon after.
  EXPECT_TRUE(wait_until([&] { return update_step(stack, holder)["status"] == "Running"; },
                         std::chrono::seconds(10)))
      << update_step(stack, holder).dump(2);

  // The lock is in the stored steps: a restarted coordinator keeps the waiter waiting.
  stack.kill_coordinator();
  stack.start_coordinator();
  json after = update_step(stack, holder);
  if (after["status"] == "Running") {
    w = update_step(stack, waiter);
    EXPECT_EQ(w["status"], "Queued") << w.dump(2);
    EXPECT_THAT(w["message"].get<std::string>(), HasSubstr("waiting for release repository"));
  }
  auto e1 = stack.wait_for_end(holder);
  auto e2 = stack.wait_for_end(waiter);
  ASSERT_EQ(e1["status"], "Succeeded") << e1.dump(2) << stack.logs(holder);
  ASSERT_EQ(e2["status"], "Succeeded") << e2.dump(2) << stack.logs(waiter);
  const json s1 = e1["stages"][0]["steps"][0];
  const json s2 = e2["stages"][0]["steps"][0];
  EXPECT_GE(s2["startedAt"].get<std::int64_t>(), s1["endedAt"].get<std::int64_t>())
      << s1.dump(2) << s2.dump(2);
  auto prs = stack.get("/api/v1/prs?state=open");
  EXPECT_EQ(prs["items"].size(), 2u) << prs.dump(2);

  // An aborted holder releases the repository; the waiter then runs.
  const std::string third = start("v4.0.0");
  ASSERT_TRUE(wait_until([&] { return update_step(stack, third)["status"] == "Running"; },
                         std::chrono::seconds(30)));
  const std::string fourth = start("v5.0.0");
  ASSERT_TRUE(wait_until(
      [&] {
        wait = repository_wait(stack);
        return !wait.is_null() && wait["execution"] == fourth;
      },
      std::chrono::seconds(30)));
  stack.post("/api/v1/executions/" + third + "/abort", json::object());
  EXPECT_EQ(stack.last_status() / 100, 2);
  auto e3 = stack.wait_for_end(third);
  auto e4 = stack.wait_for_end(fourth);
  EXPECT_EQ(e3["status"], "Aborted") << e3.dump(2);
  EXPECT_EQ(e4["status"], "Succeeded") << e4.dump(2) << stack.logs(fourth);
  EXPECT_TRUE(repository_wait(stack).is_null());
}

// A GitOps stage over an environment group: one Update Release Repo edits the file of every
// cluster of the group's environments, each path resolved with <+envgroup.name>, <+env.name>
// and <+cluster.name> and each file given its own environment's variables; <+env.*> in the
// step's, the service's and the environments' variables is each cluster's environment too (also
// through a pipeline variable that reads it). The group cannot be deleted while the pipeline
// uses it.
TEST(GitOpsPipeline, EnvironmentGroupStageUpdatesEveryEnvironmentsClusters) {
  TempDir dir("capstan-gitops-envgroup");
  const std::string initial = "{\n  \"imageTag\": \"v1\",\n  \"replicas\": \"0\"\n}\n";
  auto bare = make_remote(dir / "srv", "release.git",
                          {{{"groups/nonprod/dev/dev-east.json", initial},
                            {"groups/nonprod/qa/qa-east.json", initial},
                            {"groups/nonprod/qa/qa-west.json", initial}}});
  GitDaemon daemon(dir / "srv");
  fs::create_directories(dir / "stack");
  Stack stack(dir / "stack");
  stack.start_coordinator();
  stack.start_delegate("gitops-delegate");
  ASSERT_TRUE(stack.wait_for_delegates(1)) << stack.coordinator().log();
  std::string y = capstan::testing::release_repo_connector_yaml(daemon.url("release.git")) +
                  "---\nconnector:\n  identifier: cluster_api\n  name: cluster API\n"
                  "  type: K8sCluster\n  spec:\n    credential:\n      type: Kubeconfig\n"
                  "      spec:\n        path: /nonexistent/kubeconfig\n---\n" +
                  capstan::testing::release_repo_service_yaml(
                      "web", "groups/<+envgroup.name>/<+env.name>/<+cluster.name>.json",
                      "      variables:\n        - name: zone\n          type: String\n"
                      "          value: <+env.name>-zone\n");
  for (const auto& [env, replicas] :
       std::vector<std::pair<std::string, std::string>>{{"dev", "1"}, {"qa", "3"}, {"prod", "9"}}) {
    y += "---\nenvironment:\n  identifier: " + env + "\n  name: " + env +
         "\n  type: PreProduction\n  variables:\n    - name: replicas\n      type: String\n"
         "      value: \"" +
         replicas + "\"\n    - name: label\n      type: String\n      value: <+env.name>-x\n";
  }
  for (const auto& [cluster, env] : std::vector<std::pair<std::string, std::string>>{
           {"dev-east", "dev"}, {"qa-east", "qa"}, {"qa-west", "qa"}, {"prod-east", "prod"}}) {
    std::string id = cluster;
    std::replace(id.begin(), id.end(), '-', '_');
    y += "---\ngitopsCluster:\n  identifier: " + id + "\n  name: " + cluster +
         "\n  connectorRef: cluster_api\n  environments: [" + env + "]\n";
  }
  y += "---\nenvironmentGroup:\n  name: nonprod\n  identifier: non_prod\n"
       "  orgIdentifier: default\n  projectIdentifier: web\n  envIdentifiers: [dev, qa]\n";
  y += R"(---
pipeline:
  identifier: web_pr
  name: web PR
  variables:
    - name: where
      type: String
      value: <+env.identifier>/<+env.name>
  stages:
    - stage:
        identifier: deploy
        name: deploy
        type: Deployment
        spec:
          deploymentType: Kubernetes
          gitOpsEnabled: true
          service:
            serviceRef: web
          environmentGroup:
            envGroupRef: non_prod
            deployToAll: true
          execution:
            steps:
              - step:
                  type: GitOpsUpdateReleaseRepo
                  name: Update Release Repo
                  identifier: updateReleaseRepo
                  timeout: 2m
                  spec:
                    variables:
                      - name: imageTag
                        type: String
                        value: v7
                      - name: target
                        type: String
                        value: <+pipeline.variables.where>
                      - name: tier
                        type: String
                        value: <+env.type>
                      - name: size
                        type: String
                        value: <+env.variables.replicas>
)";
  write_file(dir / "objects.yaml", y);
  auto applied = stack.apply_file(dir / "objects.yaml");
  ASSERT_EQ(stack.last_status(), 200) << applied.dump(2);
  auto groups = stack.get("/api/v1/objects/environmentGroup");
  ASSERT_EQ(groups["items"].size(), 1u) << groups.dump(2);

  auto run = stack.post("/api/v1/pipelines/web_pr/executions", json::object());
  ASSERT_EQ(stack.last_status() / 100, 2) << run.dump(2);
  auto e = stack.wait_for_end(run["id"]);
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2) << stack.logs(run["id"]);
  const std::string branch = e["stages"][0]["steps"][0]["outputs"]["ref"];
  for (const auto& [file, replicas] : std::vector<std::pair<std::string, std::string>>{
           {"dev/dev-east", "1"}, {"qa/qa-east", "3"}, {"qa/qa-west", "3"}}) {
    const std::string env = file.substr(0, file.find('/'));
    EXPECT_EQ(git({"show", branch + ":groups/nonprod/" + file + ".json"}, bare),
              "{\n  \"imageTag\": \"v7\",\n  \"replicas\": \"" + replicas + "\",\n  \"label\": \"" +
                  env + "-x\",\n  \"size\": \"" + replicas + "\",\n  \"target\": \"" + env + "/" +
                  env + "\",\n  \"tier\": \"PreProduction\",\n  \"zone\": \"" + env + "-zone\"\n}")
        << file;
  }
  // One commit for the three files; prod (not in the group) untouched.
  EXPECT_EQ(git({"diff", "--name-only", "main", branch}, bare),
            "groups/nonprod/dev/dev-east.json\ngroups/nonprod/qa/qa-east.json\n"
            "groups/nonprod/qa/qa-west.json");

  // The group and its environments stay while something uses them.
  auto refused = stack.del("/api/v1/objects/environmentGroup/non_prod");
  EXPECT_EQ(stack.last_status(), 409) << refused.dump(2);
  EXPECT_THAT(refused.dump(), HasSubstr("pipeline 'web_pr'"));
  refused = stack.del("/api/v1/objects/environment/qa");
  EXPECT_EQ(stack.last_status(), 409) << refused.dump(2);
  EXPECT_THAT(refused.dump(), HasSubstr("environmentGroup 'non_prod'"));
  stack.del("/api/v1/objects/pipeline/web_pr");
  EXPECT_EQ(stack.last_status(), 200);
  stack.del("/api/v1/objects/environmentGroup/non_prod");
  EXPECT_EQ(stack.last_status(), 200);
}

} // namespace
} // namespace capstan::testing
