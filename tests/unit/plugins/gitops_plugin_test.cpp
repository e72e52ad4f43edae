// The GitOps steps through the real gitops.so, loaded by the plugin host, against real Git
// servers on loopback (git daemon, git http-backend) and a scripted GitHub API.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "capstan/delegate/plugin_host.h"
#include "capstan/testing/fake_api.h"
#include "capstan/testing/git_servers.h"
#include "capstan/testing/task_recorder.h"
#include "capstan/testing/testing.h"

namespace capstan::delegate {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using plugin::v1::StepRequest;
using plugin::v1::StepResult;
using testing::git;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Recorder;
using testing::TempDir;

const std::string kConfig = "{\n  \"imageTag\": \"v1.9.0\",\n  \"replicas\": 2\n}\n";

const std::string kAppSet = R"(apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: guestbook
spec:
  generators:
    - git:
        repoURL: REPO
        revision: main
        files:
          - path: "cluster-config/**/config.json"
  template:
    metadata:
      name: "guestbook-{{cluster.name}}"
    spec:
      project: default
      source:
        repoURL: REPO
        targetRevision: main
        path: "apps/guestbook"
      destination:
        server: "{{cluster.address}}"
        namespace: guestbook
)";

std::string env_config(const std::string& env) {
  return "{\n  \"imageTag\": \"v1.9.0\",\n  \"replicas\": 2,\n  \"cluster\": {\"name\": \"" + env +
         "\", \"address\": \"https://" + env + ".example:6443\"}\n}\n";
}

// A release repository served by git daemon, with cluster-config/<env>/config.json per
// environment and an ApplicationSet.
struct ReleaseRepo {
  TempDir dir{"capstan-gitops-test"};
  fs::path root = dir / "srv";
  fs::path bare;
  std::unique_ptr<testing::GitDaemon> daemon;

  explicit ReleaseRepo(testing::FileSet extra = {}) {
    testing::FileSet files = {{"cluster-config/dev/config.json", env_config("dev")},
                              {"cluster-config/staging/config.json", env_config("staging")},
                              {"cluster-config/prod/config.json", env_config("prod")},
                              {"appset/guestbook.yaml", kAppSet}};
    for (auto& [k, v] : extra) files[k] = v;
    bare = testing::make_remote(root, "release.git", {files});
    daemon = std::make_unique<testing::GitDaemon>(root);
  }
  std::string url() const { return daemon->url("release.git"); }
  std::string show(const std::string& rev, const std::string& path) const {
    return git({"show", rev + ":" + path}, bare);
  }
  std::vector<std::string> branches() const {
    std::vector<std::string> out;
    std::string list = git({"for-each-ref", "--format=%(refname:short)", "refs/heads"}, bare);
    std::size_t pos = 0;
    while (pos < list.size()) {
      auto nl = list.find('\n', pos);
      out.push_back(list.substr(pos, nl - pos));
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
    return out;
  }
};

json cluster(const std::string& id, const std::string& env, const json& env_vars = json::object()) {
  return {
      {"identifier", id},
      {"name", env},
      {"server", "https://" + env + ".example:6443"},
      {"environment",
       {{"identifier", env}, {"name", env}, {"type", "PreProduction"}, {"variables", env_vars}}}};
}

json connector_git(const std::string& url, const std::string& user = "",
                   const std::string& password = "") {
  json auth = user.empty() ? json{{"type", "Anonymous"}}
                           : json{{"type", "Http"}, {"username", user}, {"password", password}};
  return {{"identifier", "release_repo"},
          {"type", "Git"},
          {"url", url},
          {"connectionType", "Repo"},
          {"auth", auth}};
}

// The context the coordinator sends: the service's ReleaseRepo and DeploymentRepo manifests,
// the connector, the stage's GitOps clusters and the pull-request records it keeps.
json context(const json& connector, const json& clusters, long next = 1,
             const json& records = json::array(),
             const std::string& path = "cluster-config/<+env.name>/config.json") {
  const std::string key = connector["url"].get<std::string>();
  json store = {{"type", "Git"}, {"connectorRef", "release_repo"}, {"branch", "main"}};
  json release = store, deploy = store;
  release["paths"] = json::array({path});
  deploy["paths"] = json::array({"appset/guestbook.yaml"});
  return {
      {"service",
       {{"identifier", "guestbook"},
        {"variables", {{"replicas", "3"}}},
        {"manifests",
         json::array(
             {json{{"identifier", "release"}, {"type", "ReleaseRepo"}, {"store", release}},
              json{{"identifier", "deploy"}, {"type", "DeploymentRepo"}, {"store", deploy}}})}}},
      {"connectors", {{"release_repo", connector}}},
      {"environment", {{"identifier", "dev"}, {"name", "dev"}}},
      {"gitOps",
       {{"clusters", clusters},
        {"pullRequests", {{"records", records}, {"next", {{key, next}}}}}}}};
}

json records_of(const StepResult& r) {
  json out = json::array();
  for (const auto& rec : r.records()) {
    EXPECT_EQ(rec.kind(), "PullRequest");
    out.push_back(json::parse(rec.json()));
  }
  return out;
}

class GitOpsStepsTest : public ::testing::Test {
protected:
  GitOpsStepsTest() : host_(json::object(), state_.path(), "d1") {
    host_.load({testing::plugin_dir()});
  }

  static StepRequest request(const std::string& type, const json& spec, const json& ctx,
                             const std::string& id = "step", const std::string& exec = "exec-1") {
    StepRequest r;
    r.set_execution_id(exec);
    r.set_task_id(exec + "-" + id);
    r.set_attempt(1);
    r.set_step_type(type);
    r.set_step_identifier(id);
    r.set_step_name(id);
    r.set_spec_json(spec.dump());
    r.set_context_json(ctx.dump());
    r.set_timeout_ms(60000);
    return r;
  }

  StepResult run(PluginHost& host, const StepRequest& req, Recorder& rec) {
    StepRequest r = req;
    TempDir work("gitops-work");
    r.set_work_dir(work.path().string());
    return host.execute(r, rec.callbacks());
  }
  StepResult run(const StepRequest& req, Recorder& rec) { return run(host_, req, rec); }

  static json tag_spec(const std::string& tag) {
    return {{"variables", {{{"name", "imageTag"}, {"type", "String"}, {"value", tag}}}}};
  }

  TempDir state_{"gitops-state"};
  PluginHost host_;
};

TEST_F(GitOpsStepsTest, AnnouncesTheStepsUnderBothNamesWithSchemas) {
  ASSERT_TRUE(host_.rejections().empty()) << host_.rejections()[0].reason;
  std::set<std::string> types;
  for (const auto& t : host_.step_types()) {
    if (t.plugin != "gitops") continue;
    types.insert(t.type);
    EXPECT_EQ(t.spec_schema["type"], "object") << t.type;
  }
  EXPECT_EQ(types, (std::set<std::string>{"UpdateReleaseRepo", "GitOpsUpdateReleaseRepo", "MergePR",
                                          "GitOpsMergePR", "RevertPR", "GitOpsRevertPR",
                                          "FetchLinkedApps", "GitOpsFetchLinkedApps"}));
  Recorder rec;
  auto r = run(request("RevertPR", json::object(), json::object()), rec);
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("commitId"));
}

TEST_F(GitOpsStepsTest, UpdatesThreeEnvironmentsInOnePullRequestThenMergesAndReverts) {
  ReleaseRepo repo;
  json clusters = json::array({cluster("dev-cluster", "dev", {{"replicas", "1"}}),
                               cluster("staging-cluster", "staging"),
                               cluster("prod-cluster", "prod", {{"replicas", "5"}})});
  Recorder rec;
  auto r = run(request("UpdateReleaseRepo", tag_spec("v2.0.0"),
                       context(connector_git(repo.url()), clusters, 7), "updateReleaseRepo"),
               rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  EXPECT_EQ(rec.outputs["prNumber"], "7");
  EXPECT_EQ(rec.outputs["prlink"], repo.url() + "#7");
  const std::string branch = rec.outputs["ref"];
  EXPECT_EQ(git({"rev-parse", branch}, repo.bare), rec.outputs["commitId"]);
  // Service variable replicas=3, overridden per environment, the step's imageTag everywhere;
  // key order and layout kept.
  EXPECT_EQ(
      repo.show(branch, "cluster-config/dev/config.json"),
      "{\n  \"imageTag\": \"v2.0.0\",\n  \"replicas\": 1,\n  \"cluster\": {\"name\": \"dev\", "
      "\"address\": \"https://dev.example:6443\"}\n}");
  EXPECT_THAT(repo.show(branch, "cluster-config/staging/config.json"),
              HasSubstr("\"imageTag\": \"v2.0.0\",\n  \"replicas\": 3,"));
  EXPECT_THAT(repo.show(branch, "cluster-config/prod/config.json"),
              HasSubstr("\"imageTag\": \"v2.0.0\",\n  \"replicas\": 5,"));
  EXPECT_THAT(repo.show("main", "cluster-config/prod/config.json"), HasSubstr("v1.9.0"));
  // One commit for all three files.
  EXPECT_EQ(git({"rev-list", "--count", "main.." + branch}, repo.bare), "1");

  json records = records_of(r);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["number"], 7);
  EXPECT_EQ(records[0]["state"], "open");
  EXPECT_EQ(records[0]["source"], branch);
  EXPECT_EQ(records[0]["target"], "main");
  EXPECT_EQ(records[0]["repository"], repo.url());
  EXPECT_EQ(records[0]["provider"], "local");
  EXPECT_EQ(records[0]["commitId"], rec.outputs["commitId"]);

  // MergePR merges the pull request the coordinator hands back with the task.
  Recorder merge_rec;
  auto m = run(request("GitOpsMergePR", {{"deleteSourceBranch", true}},
                       context(connector_git(repo.url()), clusters, 8, records), "mergePR"),
               merge_rec);
  ASSERT_EQ(m.status(), StepResult::STATUS_SUCCEEDED) << m.message() << merge_rec.all_text();
  const std::string merged = git({"rev-parse", "main"}, repo.bare);
  EXPECT_EQ(merge_rec.outputs["commitId"], merged);
  EXPECT_EQ(merge_rec.outputs["prNumber"], "7");
  EXPECT_THAT(repo.show("main", "cluster-config/prod/config.json"), HasSubstr("v2.0.0"));
  EXPECT_THAT(repo.branches(), Not(::testing::Contains(branch)));
  EXPECT_EQ(git({"log", "-1", "--format=%s", "main"}, repo.bare),
            "Merge pull request #7 from " + branch);
  json after = records_of(m);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["state"], "merged");
  EXPECT_EQ(after[0]["mergeCommit"], merged);

  // RevertPR reverts the merge commit on a new branch and opens pull request #8.
  Recorder revert_rec;
  auto rv = run(request("RevertPR", {{"commitId", merged}, {"prTitle", "Roll back v2.0.0"}},
                        context(connector_git(repo.url()), clusters, 8, after), "revertPR"),
                revert_rec);
  ASSERT_EQ(rv.status(), StepResult::STATUS_SUCCEEDED) << rv.message() << revert_rec.all_text();
  EXPECT_EQ(revert_rec.outputs["prNumber"], "8");
  const std::string revert_branch = revert_rec.outputs["ref"];
  EXPECT_EQ(repo.show(revert_branch, "cluster-config/prod/config.json") + "\n", env_config("prod"));
  // The commit says what git revert says; the pull request carries the step's title.
  EXPECT_EQ(git({"log", "-1", "--format=%s", revert_branch}, repo.bare),
            "Revert \"Merge pull request #7 from " + branch + "\"");
  json reverted = records_of(rv);
  ASSERT_EQ(reverted.size(), 1u);
  EXPECT_EQ(reverted[0]["title"], "Roll back v2.0.0");
  EXPECT_EQ(reverted[0]["number"], 8);
}

TEST_F(GitOpsStepsTest, MalformedConfigFileFailsClearlyAndPushesNothing) {
  ReleaseRepo repo(
      testing::FileSet{{"cluster-config/prod/config.json", "{\n  \"imageTag\": \"v1\",,\n}\n"}});
  json clusters = json::array({cluster("dev-cluster", "dev"), cluster("prod-cluster", "prod")});
  Recorder rec;
  auto r = run(
      request("UpdateReleaseRepo", tag_spec("v2"), context(connector_git(repo.url()), clusters)),
      rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED) << rec.all_text();
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("cluster-config/prod/config.json:2:"));
  EXPECT_EQ(repo.branches(), std::vector<std::string>{"main"});
  EXPECT_EQ(r.records_size(), 0);
}

TEST_F(GitOpsStepsTest, MissingFileFailsAndPushesNothing) {
  ReleaseRepo repo;
  json clusters = json::array({cluster("dev-cluster", "dev"), cluster("qa-cluster", "qa")});
  Recorder rec;
  auto r = run(
      request("UpdateReleaseRepo", tag_spec("v2"), context(connector_git(repo.url()), clusters)),
      rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED) << rec.all_text();
  EXPECT_THAT(r.message(), HasSubstr("cluster-config/qa/config.json"));
  EXPECT_EQ(repo.branches(), std::vector<std::string>{"main"});
}

TEST_F(GitOpsStepsTest, UnresolvablePathNamesTheExpression) {
  ReleaseRepo repo;
  Recorder rec;
  auto r = run(request("UpdateReleaseRepo", tag_spec("v2"),
                       context(connector_git(repo.url()), json::array({cluster("c1", "dev")}), 1,
                               json::array(), "cluster-config/<+envgroup.name>/config.json")),
               rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("<+envgroup.name>"));
}

// Over an environment group, <+env.*> in the step's variables is each cluster's environment; an
// environment without the variable fails the step naming both, before anything is pushed.
TEST_F(GitOpsStepsTest, GroupVariablesNamingAMissingEnvironmentVariableFail) {
  ReleaseRepo repo;
  json dev = cluster("c1", "dev", {{"region", "eu"}});
  json qa = cluster("c2", "qa");
  for (json* c : {&dev, &qa}) (*c)["environmentGroup"] = {{"identifier", "np"}, {"name", "np"}};
  json spec = {{"variables",
                {{{"name", "where"}, {"type", "String"}, {"value", "<+env.variables.region>"}}}}};
  Recorder rec;
  auto r = run(request("UpdateReleaseRepo", spec,
                       context(connector_git(repo.url()), json::array({dev, qa}))),
               rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED) << rec.all_text();
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("variable 'where' uses <+env.variables.region> but "
                                     "environment 'qa' has no variable 'region'"));
  EXPECT_EQ(repo.branches(), std::vector<std::string>{"main"});
}

TEST_F(GitOpsStepsTest, WrongCredentialsAreAnAuthenticationErrorWithoutTheSecret) {
  TempDir dir("capstan-gitops-auth");
  testing::make_remote(dir / "srv", "release.git", {{{"cluster-config/dev/config.json", kConfig}}});
  testing::GitHttpServer server(dir / "srv", "deployer", "right-password-123");
  const std::string wrong = "wrong-password-456";
  Recorder rec;
  auto r = run(request("UpdateReleaseRepo", tag_spec("v2"),
                       context(connector_git(server.url("release.git"), "deployer", wrong),
                               json::array({cluster("dev-cluster", "dev")}))),
               rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED) << rec.all_text();
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_AUTHENTICATION) << r.message();
  EXPECT_THAT(r.message(), Not(HasSubstr(wrong)));
  EXPECT_THAT(rec.all_text(), Not(HasSubstr(wrong)));
  EXPECT_THAT(rec.masks, ::testing::Contains(wrong));

  // The right password works over the same http backend.
  Recorder ok;
  auto good = run(
      request("UpdateReleaseRepo", tag_spec("v2"),
              context(connector_git(server.url("release.git"), "deployer", "right-password-123"),
                      json::array({cluster("dev-cluster", "dev")}))),
      ok);
  ASSERT_EQ(good.status(), StepResult::STATUS_SUCCEEDED) << good.message() << ok.all_text();
}

TEST_F(GitOpsStepsTest, UnreachableRemoteIsAConnectivityError) {
  const testing::ClosedPort closed;
  const int port = closed.port();
  Recorder rec;
  auto r =
      run(request("UpdateReleaseRepo", tag_spec("v2"),
                  context(connector_git("git://127.0.0.1:" + std::to_string(port) + "/release.git"),
                          json::array({cluster("dev-cluster", "dev")}))),
          rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_CONNECTIVITY) << r.message();
}

// Two delegates (separate plugin hosts, separate caches) update and merge the same repository
// at once: the merges race on main, and the loser's push is rebuilt on the new head.
TEST_F(GitOpsStepsTest, ConcurrentUpdatesAndMergesFromTwoDelegatesBothLand) {
  ReleaseRepo repo;
  TempDir other_state("gitops-state-2");
  PluginHost other(json::object(), other_state.path(), "d2");
  other.load({testing::plugin_dir()});
  json dev = json::array({cluster("dev-cluster", "dev")});
  json prod = json::array({cluster("prod-cluster", "prod")});
  StepResult a, b;
  Recorder ra, rb;
  std::thread ta([&] {
    a = run(host_,
            request("UpdateReleaseRepo", tag_spec("v3-dev"),
                    context(connector_git(repo.url()), dev, 1), "update", "exec-a"),
            ra);
  });
  std::thread tb([&] {
    b = run(other,
            request("UpdateReleaseRepo", tag_spec("v3-prod"),
                    context(connector_git(repo.url()), prod, 2), "update", "exec-b"),
            rb);
  });
  ta.join();
  tb.join();
  ASSERT_EQ(a.status(), StepResult::STATUS_SUCCEEDED) << a.message() << ra.all_text();
  ASSERT_EQ(b.status(), StepResult::STATUS_SUCCEEDED) << b.message() << rb.all_text();
  EXPECT_NE(ra.outputs["ref"], rb.outputs["ref"]);

  StepResult ma, mb;
  Recorder rma, rmb;
  std::thread tma([&] {
    ma = run(host_,
             request("MergePR", json::object(),
                     context(connector_git(repo.url()), dev, 3, records_of(a)), "merge", "exec-a"),
             rma);
  });
  std::thread tmb([&] {
    mb = run(other,
             request("MergePR", {{"mergeMethod", "squash"}},
                     context(connector_git(repo.url()), prod, 3, records_of(b)), "merge", "exec-b"),
             rmb);
  });
  tma.join();
  tmb.join();
  ASSERT_EQ(ma.status(), StepResult::STATUS_SUCCEEDED) << ma.message() << rma.all_text();
  ASSERT_EQ(mb.status(), StepResult::STATUS_SUCCEEDED) << mb.message() << rmb.all_text();
  EXPECT_THAT(repo.show("main", "cluster-config/dev/config.json"), HasSubstr("v3-dev"));
  EXPECT_THAT(repo.show("main", "cluster-config/prod/config.json"), HasSubstr("v3-prod"));
}

// The target branch moves between the pull request and its merge (someone pushed): the merge is
// rebuilt on the new head instead of failing or overwriting the other commit.
TEST_F(GitOpsStepsTest, MergeAfterTheTargetMovedKeepsTheOtherCommit) {
  ReleaseRepo repo;
  json clusters = json::array({cluster("dev-cluster", "dev")});
  Recorder rec;
  auto r = run(
      request("UpdateReleaseRepo", tag_spec("v4"), context(connector_git(repo.url()), clusters)),
      rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  TempDir clone("gitops-clone");
  git({"clone", "-q", repo.bare.string(), (clone / "w").string()});
  testing::write_file(clone / "w" / "README.md", "hand-made change\n");
  git({"add", "README.md"}, clone / "w");
  git({"commit", "-q", "-m", "Hand-made change"}, clone / "w");
  git({"push", "-q", "origin", "main"}, clone / "w");
  const std::string moved = git({"rev-parse", "main"}, repo.bare);

  Recorder mrec;
  auto m = run(request("MergePR", json::object(),
                       context(connector_git(repo.url()), clusters, 2, records_of(r))),
               mrec);
  ASSERT_EQ(m.status(), StepResult::STATUS_SUCCEEDED) << m.message() << mrec.all_text();
  EXPECT_EQ(git({"rev-parse", "main^1"}, repo.bare), moved);
  EXPECT_EQ(repo.show("main", "README.md"), "hand-made change");
  EXPECT_THAT(repo.show("main", "cluster-config/dev/config.json"), HasSubstr("v4"));
}

TEST_F(GitOpsStepsTest, MergeWithoutAPullRequestSaysWhatToDo) {
  ReleaseRepo repo;
  // Another execution's open pull request is not this one's to merge.
  json others = json::array({json{{"repository", repo.url()},
                                  {"provider", "local"},
                                  {"number", 3},
                                  {"state", "open"},
                                  {"source", "feature"},
                                  {"target", "main"},
                                  {"executionId", "exec-0"}}});
  Recorder rec;
  auto r = run(
      request("MergePR", json::object(),
              context(connector_git(repo.url()), json::array({cluster("c", "dev")}), 1, others)),
      rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("run UpdateReleaseRepo"));
}

TEST_F(GitOpsStepsTest, FetchLinkedAppsRendersTheApplicationSetPerCluster) {
  ReleaseRepo repo;
  json clusters = json::array({cluster("dev-cluster", "dev"), cluster("prod-cluster", "prod")});
  Recorder rec;
  auto r = run(request("GitOpsFetchLinkedApps", json::object(),
                       context(connector_git(repo.url()), clusters)),
               rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  EXPECT_EQ(rec.outputs["appCount"], "2");
  json apps = json::parse(rec.outputs["applications"]);
  ASSERT_EQ(apps.size(), 2u);
  EXPECT_EQ(apps[0]["name"], "guestbook-dev");
  EXPECT_EQ(apps[0]["cluster"], "dev-cluster");
  EXPECT_EQ(apps[0]["server"], "https://dev.example:6443");
  EXPECT_EQ(apps[1]["name"], "guestbook-prod");
  EXPECT_EQ(json::parse(rec.outputs["applicationsByCluster"])["prod-cluster"],
            json::array({"guestbook-prod"}));
}

TEST_F(GitOpsStepsTest, GithubPullRequestsGoThroughTheApi) {
  TempDir dir("capstan-gitops-gh");
  testing::make_remote(dir / "srv", "org/release.git",
                       {{{"cluster-config/dev/config.json", kConfig}}});
  testing::GitHttpServer server(dir / "srv");
  const std::string token = "ghp_secret_token_value";
  testing::FakeApi api([&](const testing::Recorded& req, httplib::Response& res) {
    if (req.method == "POST" && req.path == "/repos/org/release/pulls") {
      json body = req.json();
      res.status = 201;
      res.set_content(json{{"number", 42},
                           {"title", body["title"]},
                           {"state", "open"},
                           {"html_url", "https://github.example/org/release/pull/42"},
                           {"head", {{"ref", body["head"]}, {"sha", "abc"}}},
                           {"base", {{"ref", body["base"]}}}}
                          .dump(),
                      "application/json");
      return;
    }
    res.status = 404;
    res.set_content(R"({"message":"Not Found"})", "application/json");
  });
  json conn = {{"identifier", "release_repo"},
               {"type", "Github"},
               {"url", server.url("org/release.git")},
               {"connectionType", "Repo"},
               {"apiUrl", api.url()},
               {"apiToken", token},
               {"auth", {{"type", "Http"}, {"username", "bot"}, {"token", token}}}};
  Recorder rec;
  auto r = run(request("UpdateReleaseRepo", tag_spec("v5"),
                       context(conn, json::array({cluster("dev-cluster", "dev")}), 0)),
               rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  EXPECT_EQ(rec.outputs["prNumber"], "42");
  EXPECT_EQ(rec.outputs["prlink"], "https://github.example/org/release/pull/42");
  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].header("Authorization"), "Bearer " + token);
  EXPECT_EQ(requests[0].json()["head"], rec.outputs["ref"]);
  json records = records_of(r);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["provider"], "github");
  EXPECT_THAT(rec.all_text(), Not(HasSubstr(token)));
}

} // namespace
} // namespace capstan::delegate
