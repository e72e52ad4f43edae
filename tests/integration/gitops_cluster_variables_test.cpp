// <+cluster.*> in Update Release Repo variables, end to end: coordinator and delegate processes,
// the gitops plugin and a release repo behind git daemon. Each cluster's file gets its own
// cluster's values; where a cluster expression cannot be resolved per cluster, apply refuses it
// and says why.
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

// Environment prod, two GitOps clusters serving it, the release repo's connector and a service
// whose ReleaseRepo path is one file per cluster.
std::string objects_yaml(const std::string& url) {
  std::string y = release_repo_connector_yaml(url) +
                  "---\nconnector:\n  identifier: cluster_api\n  name: cluster API\n"
                  "  type: K8sCluster\n  spec:\n    credential:\n      type: Kubeconfig\n"
                  "      spec:\n        path: /nonexistent/kubeconfig\n---\n" +
                  release_repo_service_yaml("web", "clusters/<+cluster.name>.json") +
                  "---\nenvironment:\n  identifier: prod\n  name: prod\n  type: Production\n";
  for (const auto& [id, name] : std::vector<std::pair<std::string, std::string>>{
           {"east_cluster", "prod-east"}, {"west_cluster", "prod-west"}}) {
    y += "---\ngitopsCluster:\n  identifier: " + id + "\n  name: " + name +
         "\n  connectorRef: cluster_api\n  environments: [prod]\n";
  }
  return y;
}

// A pipeline whose GitOps stage runs Update Release Repo with `variables` (list items indented
// for `variables:`), then `more` steps.
// `pipeline_variables` (list items indented for `variables:`) are the pipeline's own.
std::string pipeline_yaml(const std::string& variables, const std::string& more = "",
                          const std::string& pipeline_variables = "") {
  return R"(---
pipeline:
  identifier: web_pr
  name: web PR
)" + (pipeline_variables.empty() ? "" : "  variables:\n" + pipeline_variables) +
         R"(  stages:
    - stage:
        identifier: deploy
        name: deploy
        type: Deployment
        spec:
          deploymentType: Kubernetes
          gitOpsEnabled: true
          service:
            serviceRef: web
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
)" + variables +
         more;
}

class ClusterVariablesTest : public ::testing::Test {
protected:
  void SetUp() override {
    const std::string initial = "{\n  \"imageTag\": \"v1\"\n}\n";
    bare_ =
        make_remote(dir_ / "srv", "release.git",
                    {{{"clusters/prod-east.json", initial}, {"clusters/prod-west.json", initial}}});
    daemon_ = std::make_unique<GitDaemon>(dir_ / "srv");
    fs::create_directories(dir_ / "stack");
    stack_.start_coordinator();
  }
  // Starts the delegate, applies `pipeline` and runs it to success; `branch` is the one its
  // Update Release Repo step pushed.
  void run_to_branch(const std::string& pipeline, std::string& branch) {
    stack_.start_delegate("gitops-delegate");
    ASSERT_TRUE(stack_.wait_for_delegates(1)) << stack_.coordinator().log();
    auto applied = apply(pipeline);
    ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
    auto run = stack_.post("/api/v1/pipelines/web_pr/executions", json::object());
    ASSERT_EQ(stack_.last_status() / 100, 2) << run.dump(2);
    auto e = stack_.wait_for_end(run["id"]);
    ASSERT_EQ(e["status"], "Succeeded") << e.dump(2) << stack_.logs(run["id"]);
    branch = e["stages"][0]["steps"][0]["outputs"]["ref"];
  }
  json apply(const std::string& pipeline) {
    write_file(dir_ / "objects.yaml", objects_yaml(daemon_->url("release.git")) + pipeline);
    return stack_.apply_file(dir_ / "objects.yaml");
  }

  TempDir dir_{"capstan-gitops-cluster-vars"};
  fs::path bare_;
  std::unique_ptr<GitDaemon> daemon_;
  Stack stack_{dir_ / "stack"};
};

TEST_F(ClusterVariablesTest, EachClustersFileGetsItsOwnClusterValues) {
  std::string branch;
  ASSERT_NO_FATAL_FAILURE(run_to_branch(pipeline_yaml(R"(                      - name: imageTag
                        type: String
                        value: v2
                      - name: cluster.name
                        type: String
                        value: <+cluster.name>
                      - name: cluster.id
                        type: String
                        value: id-<+cluster.identifier>-<+env.name>
)"),
                                        branch));
  for (const auto& [name, id] : std::vector<std::pair<std::string, std::string>>{
           {"prod-east", "east_cluster"}, {"prod-west", "west_cluster"}}) {
    EXPECT_EQ(git({"show", branch + ":clusters/" + name + ".json"}, bare_),
              "{\n  \"imageTag\": \"v2\",\n  \"cluster\": {\n    \"id\": \"id-" + id +
                  "-prod\",\n    \"name\": \"" + name + "\"\n  }\n}")
        << name;
  }
}

TEST_F(ClusterVariablesTest, NamesThatOnlyContainClusterAreNotClusterExpressions) {
  // `mycluster.` is a pipeline variable's name followed by a method, not the cluster root.
  std::string branch;
  ASSERT_NO_FATAL_FAILURE(run_to_branch(pipeline_yaml(R"(                      - name: imageTag
                        type: String
                        value: <+pipeline.variables.mycluster.toUpperCase()>-<+cluster.name>
)",
                                                      "",
                                                      R"(    - name: mycluster
      type: String
      value: blue
)"),
                                        branch));
  EXPECT_EQ(git({"show", branch + ":clusters/prod-east.json"}, bare_),
            "{\n  \"imageTag\": \"BLUE-prod-east\"\n}");
}

TEST_F(ClusterVariablesTest, ClusterExpressionsThatCannotBeResolvedPerClusterAreRefused) {
  // Inside a larger expression: the step resolves whole <+cluster.*> expressions only.
  auto refused = apply(pipeline_yaml(R"(                      - name: upper
                        type: String
                        value: <+cluster.name.toUpperCase()>
)"));
  EXPECT_EQ(stack_.last_status(), 422) << refused.dump(2);
  EXPECT_THAT(refused.dump(), HasSubstr("objects.yaml:87:32"));
  EXPECT_THAT(refused.dump(), HasSubstr("resolved per GitOps cluster as whole expressions"));
  // A field the cluster does not have.
  refused = apply(pipeline_yaml(R"(                      - name: server
                        type: String
                        value: <+cluster.server>
)"));
  EXPECT_EQ(stack_.last_status(), 422) << refused.dump(2);
  EXPECT_THAT(refused.dump(), HasSubstr("<+cluster.server>"));
  // Outside Update Release Repo variables: one value for every cluster cannot be chosen.
  refused = apply(pipeline_yaml(R"(                      - name: imageTag
                        type: String
                        value: v2
)",
                                R"(              - step:
                  type: MergePR
                  name: Merge PR
                  identifier: mergePR
                  timeout: 2m
                  spec:
                    prNumber: <+cluster.name>
)"));
  EXPECT_EQ(stack_.last_status(), 422) << refused.dump(2);
  EXPECT_THAT(refused.dump(),
              HasSubstr("is resolved per GitOps cluster: it is only available in a GitOps "
                        "service's release repo paths and in UpdateReleaseRepo variables"));
}

} // namespace
} // namespace capstan::testing
