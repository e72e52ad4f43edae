// A GitOps PR pipeline end to end: coordinator and delegate processes, the gitops plugin, a
// release repo behind git daemon. The coordinator keeps the `local` pull requests; the CLI lists
// them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

std::string objects_yaml(const std::string& url) {
  std::string y = R"(connector:
  identifier: release_repo
  name: release repo
  type: Git
  spec:
    url: )" + url +
                  R"(
    connectionType: Repo
    branchName: main
    type: Http
    spec: {}
---
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
service:
  identifier: guestbook
  name: guestbook
  gitOpsEnabled: true
  serviceDefinition:
    type: Kubernetes
    spec:
      manifests:
        - manifest:
            identifier: release
            type: ReleaseRepo
            spec:
              store:
                type: Git
                spec:
                  connectorRef: release_repo
                  gitFetchType: Branch
                  branch: main
                  paths:
                    - cluster-config/<+cluster.name>/config.json
        - manifest:
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
  y += R"(---
pipeline:
  identifier: guestbook_pr
  name: guestbook PR pipeline
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
              - step:
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
)";
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

} // namespace
} // namespace capstan::testing
