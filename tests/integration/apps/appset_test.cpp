// ApplicationSets end to end: a real coordinator, a delegate hosting the gitops plugin, three
// capstan-sandbox clusters and a real Git remote. A git files generator over
// cluster-config/**/config.json generates one application per cluster; the applications follow
// the remote (created, updated, deleted with their resources), and a render error is a
// condition that leaves them as they are.
#include <gtest/gtest.h>

#include <capstan/testing/git_servers.h>

#include <signal.h>

#include <algorithm>

#include "gitops_stack_test.h"

namespace {

namespace fs = std::filesystem;
using namespace capstan::testing;
using nlohmann::json;

std::string config_json(const std::string& cluster, const std::string& manifests) {
  return R"({"cluster": ")" + cluster + R"(", "manifests": ")" + manifests + "\"}\n";
}

constexpr const char* kClusters[] = {"dev", "qa", "prod"};

class AppSetTest : public GitOpsStackTest {
protected:
  AppSetTest() : GitOpsStackTest("capstan-appset") {}
  // One environment, and a connector and GitOps cluster per sandbox. The last cluster's
  // identifier differs from its name: generated destinations name clusters as Argo CD does.
  std::string clusters_yaml() const {
    std::string out = "environment:\n  identifier: fleet\n  name: fleet\n  type: PreProduction\n";
    for (std::size_t i = 0; i < sandboxes_.size(); ++i) {
      const std::string id = kClusters[i];
      out += "---\nconnector:\n  identifier: " + id + "_api\n  name: " + id +
             " API\n  type: K8sCluster\n  spec:\n    credential:\n      type: Kubeconfig\n"
             "      spec:\n        path: " +
             sandboxes_[i]->kubeconfig().string() + "\n---\ngitopsCluster:\n  identifier: " + id +
             (i + 1 == sandboxes_.size() ? "_cluster" : "") + "\n  name: " + id +
             "\n  connectorRef: " + id + "_api\n  environments: [fleet]\n";
    }
    return out;
  }
  static std::string appset_yaml(const std::string& url) {
    return "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: fleet\n"
           "spec:\n  goTemplate: true\n  goTemplateOptions: [\"missingkey=error\"]\n"
           "  generators:\n  - git:\n      repoURL: " +
           url +
           "\n      revision: main\n      files:\n      - path: cluster-config/**/config.json\n"
           "  template:\n    metadata:\n      name: 'web-{{.cluster}}'\n    spec:\n"
           "      project: default\n      source:\n        repoURL: " +
           url +
           "\n        targetRevision: main\n        path: '{{.manifests}}'\n"
           "      destination:\n        name: '{{.cluster}}'\n        namespace: web\n"
           "      syncPolicy:\n        automated: {prune: true, selfHeal: true}\n"
           "        syncOptions: [CreateNamespace=true]\n";
  }
  json appset(const std::string& name) { return stack_.get("/api/v1/appsets/" + name); }
  static std::string condition(const json& set, const std::string& type,
                               const char* field = "status") {
    for (const auto& c : set["status"].value("conditions", json::array())) {
      if (c.value("type", "") == type) return c.value(field, "");
    }
    return "";
  }
  // The ConfigMap's value in a cluster, "" when the cluster says it is not there.
  std::string value_in(std::size_t cluster) {
    auto r = sandboxes_[cluster]->kubectl(
        {"get", "configmap", "settings", "-n", "web", "-o", "jsonpath={.data.value}"});
    if (r.status.success()) return r.out;
    return r.err.find("NotFound") != std::string::npos ? "" : "kubectl failed: " + r.err;
  }
  std::vector<std::string> app_names() {
    std::vector<std::string> out;
    const json apps = stack_.get("/api/v1/apps");
    for (const auto& a : apps["items"]) out.push_back(a["metadata"]["name"].get<std::string>());
    return out;
  }
  std::vector<std::unique_ptr<Sandbox>> sandboxes_;
};

TEST_F(AppSetTest, GitFilesGeneratorFollowsTheRemoteAcrossThreeClusters) {
  for (const char* c : kClusters) {
    sandboxes_.push_back(std::make_unique<Sandbox>(dir_ / (std::string("sandbox-") + c)));
  }
  ReleaseRemote remote({{"cluster-config/dev/config.json", config_json("dev", "apps/v1")},
                        {"cluster-config/qa/config.json", config_json("qa", "apps/v1")},
                        {"cluster-config/prod/config.json", config_json("prod", "apps/v1")},
                        {"apps/v1/settings.yaml", configmap_yaml("settings", "one")},
                        {"apps/v2/settings.yaml", configmap_yaml("settings", "two")}});
  delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  auto applied =
      stack_.apply_text("fleet.yaml", clusters_yaml() + "---\n" + appset_yaml(remote.url()));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);

  // Three applications, one per cluster, owned by the set, all synced.
  json set;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const char* c : kClusters) {
          if (!synced_healthy(app(std::string("web-") + c))) return false;
        }
        return true;
      },
      std::chrono::seconds(90)))
      << appset("fleet").dump(2) << stack_.get("/api/v1/apps").dump(2);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(value_in(i), "one") << kClusters[i];
  json generated = app("web-prod");
  EXPECT_EQ(generated["metadata"]["ownerReferences"][0]["kind"], "ApplicationSet");
  EXPECT_EQ(generated["metadata"]["ownerReferences"][0]["name"], "fleet");
  EXPECT_EQ(generated["spec"]["destination"]["name"], "prod");
  ASSERT_TRUE(
      wait_until([&] { return condition(set = appset("fleet"), "ResourcesUpToDate") == "True"; },
                 std::chrono::seconds(30)))
      << set.dump(2);
  EXPECT_EQ(condition(set, "ErrorOccurred"), "False");
  EXPECT_EQ(condition(set, "ParametersGenerated"), "True");
  EXPECT_EQ(set["status"]["applications"], json::array({"web-dev", "web-prod", "web-qa"}));
  EXPECT_FALSE(set["assignment"]["delegate"].get<std::string>().empty());

  // The CLI shows it.
  auto listed = stack_.cli({"appsets", "list"});
  EXPECT_TRUE(listed.status.success()) << listed.err;
  EXPECT_NE(listed.out.find("fleet"), std::string::npos) << listed.out;

  // qa's config.json goes: its application is deleted, and its resources with it.
  remote.commit({}, {"cluster-config/qa/config.json"});
  ASSERT_TRUE(wait_until(
      [&] {
        auto names = app_names();
        return std::find(names.begin(), names.end(), "web-qa") == names.end();
      },
      std::chrono::seconds(60)))
      << appset("fleet").dump(2);
  ASSERT_TRUE(wait_until([&] { return value_in(1).empty(); }, std::chrono::seconds(30)))
      << "the ConfigMap is still in the qa cluster";
  EXPECT_EQ(value_in(0), "one");
  EXPECT_EQ(value_in(2), "one");
  EXPECT_TRUE(synced_healthy(app("web-dev")));
  EXPECT_TRUE(synced_healthy(app("web-prod")));

  // A value changes: the generated application is updated and synced.
  remote.commit({{"cluster-config/prod/config.json", config_json("prod", "apps/v2")}});
  ASSERT_TRUE(wait_until([&] { return value_in(2) == "two"; }, std::chrono::seconds(60)))
      << app("web-prod").dump(2);
  EXPECT_EQ(app("web-prod")["spec"]["source"]["path"], "apps/v2");
  EXPECT_EQ(value_in(0), "one");

  // A config.json that breaks the render (missingkey=error): a condition naming why; the
  // applications stay as they are.
  remote.commit({{"cluster-config/dev/config.json", R"({"manifests": "apps/v2"})"
                                                    "\n"}});
  ASSERT_TRUE(
      wait_until([&] { return condition(set = appset("fleet"), "ErrorOccurred") == "True"; },
                 std::chrono::seconds(60)))
      << set.dump(2);
  const std::string why = condition(set, "ErrorOccurred", "message");
  EXPECT_NE(why.find("cluster"), std::string::npos) << why;
  EXPECT_NE(why.find("fleet.yaml:"), std::string::npos) << why; // where in the applied file
  EXPECT_EQ(condition(set, "ResourcesUpToDate"), "False");
  EXPECT_EQ(app_names(), (std::vector<std::string>{"web-dev", "web-prod"}));
  EXPECT_EQ(app("web-dev")["spec"]["source"]["path"], "apps/v1");
  EXPECT_EQ(value_in(0), "one");

  // Fixed: up to date again. Then deleting the set deletes its applications and resources.
  remote.commit({{"cluster-config/dev/config.json", config_json("dev", "apps/v1")}});
  ASSERT_TRUE(wait_until([&] { return condition(appset("fleet"), "ErrorOccurred") == "False"; },
                         std::chrono::seconds(60)));
  auto deleted = stack_.cli({"appsets", "delete", "fleet"});
  ASSERT_TRUE(deleted.status.success()) << deleted.err;
  ASSERT_TRUE(wait_until([&] { return app_names().empty(); }, std::chrono::seconds(30)));
  ASSERT_TRUE(wait_until([&] { return value_in(0).empty() && value_in(2).empty(); },
                         std::chrono::seconds(30)));
}

// A set whose generated applications go nowhere (no such cluster): only the set's following
// is looked at.
std::string unplaced_set(const std::string& url) {
  return "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: fleet\n"
         "spec:\n  goTemplate: true\n  generators:\n  - git:\n      repoURL: " +
         url +
         "\n      revision: main\n      files:\n      - path: cluster-config/*/config.json\n"
         "  template:\n    metadata:\n      name: 'web-{{.cluster}}'\n    spec:\n"
         "      project: default\n      source:\n        repoURL: " +
         url +
         "\n        targetRevision: main\n        path: apps/v1\n      destination:\n"
         "        server: https://kubernetes.default.svc\n        namespace: web\n";
}

TEST_F(AppSetTest, SetRendersOnPushAndRefreshAndMovesWhenItsDelegateDies) {
  // Polls are ten minutes apart here: only a push, a refresh or a new holder render the set.
  capstan::testing::write_file(dir_ / "delegate.yaml",
                               "plugins:\n  gitops:\n    pollIntervalMs: 600000\n");
  ReleaseRemote remote(FileSet{{"cluster-config/a/config.json", R"({"cluster": "a"})"}});
  delegate("east");
  delegate("west");
  ASSERT_TRUE(stack_.wait_for_delegates(2));
  stack_.apply_text("set.yaml", unplaced_set(remote.url()));
  ASSERT_EQ(stack_.last_status(), 200);
  auto has = [&](const std::string& name) {
    auto names = app_names();
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  ASSERT_TRUE(wait_until([&] { return has("web-a"); }, std::chrono::seconds(30)))
      << appset("fleet").dump(2);

  // A push webhook naming the repository renders it again.
  remote.commit({{"cluster-config/b/config.json", R"({"cluster": "b"})"}});
  httplib::Client hook(stack_.api());
  json push = {{"ref", "refs/heads/main"},
               {"after", "0000000000000000000000000000000000000000"},
               {"repository", {{"clone_url", remote.url()}, {"default_branch", "main"}}}};
  auto r = hook.Post("/api/v1/webhooks/git", {{"X-GitHub-Event", "push"}}, push.dump(),
                     "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("applicationset/fleet"), std::string::npos) << r->body;
  ASSERT_TRUE(wait_until([&] { return has("web-b"); }, std::chrono::seconds(30)))
      << appset("fleet").dump(2);

  // So does `capstan appsets refresh`.
  remote.commit({{"cluster-config/c/config.json", R"({"cluster": "c"})"}});
  auto refreshed = stack_.cli({"appsets", "refresh", "fleet"});
  ASSERT_TRUE(refreshed.status.success()) << refreshed.err;
  ASSERT_TRUE(wait_until([&] { return has("web-c"); }, std::chrono::seconds(30)))
      << appset("fleet").dump(2);

  // The delegate rendering it dies: the other one takes it and renders it at once.
  json set = appset("fleet");
  const std::string holder = set["assignment"]["delegate"];
  ASSERT_TRUE(holder == "east" || holder == "west") << set.dump(2);
  const auto epoch = set["assignment"]["epoch"].get<std::uint64_t>();
  remote.commit({{"cluster-config/d/config.json", R"({"cluster": "d"})"}});
  auto* dead = delegates_[holder == "east" ? 0 : 1];
  dead->child().signal(SIGKILL);
  dead->child().wait_for(std::chrono::seconds(10));
  ASSERT_TRUE(wait_until([&] { return has("web-d"); }, std::chrono::seconds(30)))
      << appset("fleet").dump(2);
  set = appset("fleet");
  EXPECT_EQ(set["assignment"]["delegate"], holder == "east" ? "west" : "east");
  EXPECT_GT(set["assignment"]["epoch"].get<std::uint64_t>(), epoch);
  EXPECT_EQ(set["status"]["applications"], json::array({"web-a", "web-b", "web-c", "web-d"}));
}

TEST_F(AppSetTest, CreateOnlyPolicyNeitherUpdatesNorDeletes) {
  delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  auto set = [](const std::string& policy, const std::string& elements) {
    return "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: listed\n"
           "spec:\n  syncPolicy:\n    applicationsSync: " +
           policy + "\n  generators:\n  - list:\n      elements: " + elements +
           "\n  template:\n    metadata:\n      name: 'web-{{name}}'\n    spec:\n"
           "      project: default\n      source:\n        repoURL: https://example.invalid/s.git\n"
           "        targetRevision: main\n        path: '{{path}}'\n      destination:\n"
           "        server: https://kubernetes.default.svc\n        namespace: web\n";
  };
  stack_.apply_text("set.yaml", set("create-only", "[{name: a, path: one}, {name: b, path: one}]"));
  ASSERT_EQ(stack_.last_status(), 200);
  ASSERT_TRUE(wait_until(
      [&] {
        return app_names() == std::vector<std::string>{"web-a", "web-b"};
      },
      std::chrono::seconds(30)));
  // a changes, b goes, c comes: only c is created.
  stack_.apply_text("set.yaml", set("create-only", "[{name: a, path: two}, {name: c, path: one}]"));
  ASSERT_EQ(stack_.last_status(), 200);
  json s;
  ASSERT_TRUE(wait_until(
      [&] {
        return app_names() == std::vector<std::string>{"web-a", "web-b", "web-c"};
      },
      std::chrono::seconds(30)));
  ASSERT_TRUE(wait_until(
      [&] {
        s = appset("listed");
        return s["status"].value("applications", json::array()) == json::array({"web-a", "web-c"});
      },
      std::chrono::seconds(30)))
      << s.dump(2);
  EXPECT_EQ(app("web-a")["spec"]["source"]["path"], "one");
  const json resources = s["status"]["resources"];
  EXPECT_NE(resources.dump().find(R"({"name":"web-a","status":"OutOfDate"})"), std::string::npos)
      << resources.dump();
  EXPECT_NE(resources.dump().find(R"({"name":"web-b","status":"Orphaned"})"), std::string::npos)
      << resources.dump();
  // The default policy (sync) then updates a and deletes b.
  stack_.apply_text("set.yaml", set("sync", "[{name: a, path: two}, {name: c, path: one}]"));
  ASSERT_EQ(stack_.last_status(), 200);
  ASSERT_TRUE(wait_until(
      [&] {
        return app_names() == std::vector<std::string>{"web-a", "web-c"};
      },
      std::chrono::seconds(30)));
  ASSERT_TRUE(wait_until([&] { return app("web-a")["spec"]["source"]["path"] == "two"; },
                         std::chrono::seconds(30)));
}

TEST_F(AppSetTest, RenderErrorsAreConditionsNamingWhereAndWhy) {
  delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  // A repository that cannot be read.
  stack_.apply_text("set.yaml", unplaced_set("file://" + (dir_ / "no-such-repo.git").string()));
  ASSERT_EQ(stack_.last_status(), 200);
  json s;
  ASSERT_TRUE(wait_until([&] { return condition(s = appset("fleet"), "ErrorOccurred") == "True"; },
                         std::chrono::seconds(30)))
      << s.dump(2);
  EXPECT_NE(condition(s, "ErrorOccurred", "message").find("no-such-repo.git"), std::string::npos)
      << s.dump(2);
  EXPECT_EQ(condition(s, "ParametersGenerated"), "False");
  EXPECT_EQ(condition(s, "ResourcesUpToDate"), "False");
  // Two elements generating one name.
  stack_.apply_text(
      "twice.yaml",
      "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: twice\n"
      "spec:\n  generators:\n  - list:\n      elements: [{name: a}, {name: a}]\n"
      "  template:\n    metadata:\n      name: 'web-{{name}}'\n    spec:\n"
      "      project: default\n      source:\n        repoURL: https://example.invalid/s.git\n"
      "        targetRevision: main\n        path: x\n      destination:\n"
      "        server: https://kubernetes.default.svc\n        namespace: web\n");
  ASSERT_EQ(stack_.last_status(), 200);
  ASSERT_TRUE(wait_until([&] { return condition(s = appset("twice"), "ErrorOccurred") == "True"; },
                         std::chrono::seconds(30)))
      << s.dump(2);
  const std::string why = condition(s, "ErrorOccurred", "message");
  EXPECT_NE(why.find("twice.yaml:7:"), std::string::npos) << why;
  EXPECT_NE(why.find("second application named 'web-a'"), std::string::npos) << why;
  EXPECT_TRUE(app_names().empty());
  // The CLI shows the error; the coordinator and delegate are still there.
  auto shown = stack_.cli({"appsets", "get", "twice"});
  EXPECT_TRUE(shown.status.success()) << shown.err;
  EXPECT_NE(shown.out.find("ErrorOccurred=True"), std::string::npos) << shown.out;
  EXPECT_EQ(stack_.connected_delegates(), 1);
}

TEST_F(AppSetTest, SetDoesNotOverwriteAnApplicationItDoesNotOwn) {
  delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  const std::string mine =
      "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web-solo\n"
      "spec:\n  project: default\n  source:\n    repoURL: https://example.invalid/mine.git\n"
      "    targetRevision: main\n    path: mine\n  destination:\n"
      "    server: https://kubernetes.default.svc\n    namespace: mine\n";
  const std::string set =
      "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: listed\n"
      "spec:\n  syncPolicy:\n    preserveResourcesOnDeletion: true\n  generators:\n"
      "  - list:\n      elements:\n      - name: solo\n      - name: duo\n"
      "  template:\n    metadata:\n      name: 'web-{{name}}'\n    spec:\n      project: default\n"
      "      source:\n        repoURL: https://example.invalid/set.git\n"
      "        targetRevision: main\n        path: '{{name}}'\n      destination:\n"
      "        server: https://kubernetes.default.svc\n        namespace: '{{name}}'\n";
  stack_.apply_text("mine.yaml", mine);
  ASSERT_EQ(stack_.last_status(), 200);
  stack_.apply_text("set.yaml", set);
  ASSERT_EQ(stack_.last_status(), 200);
  json s;
  ASSERT_TRUE(wait_until([&] { return condition(s = appset("listed"), "ErrorOccurred") == "True"; },
                         std::chrono::seconds(30)))
      << s.dump(2);
  EXPECT_NE(condition(s, "ErrorOccurred", "message").find("web-solo"), std::string::npos)
      << s.dump(2);
  ASSERT_TRUE(wait_until([&] { return stack_.get("/api/v1/apps/web-duo").contains("spec"); },
                         std::chrono::seconds(30)));
  json duo = app("web-duo");
  EXPECT_EQ(duo["metadata"]["ownerReferences"][0]["name"], "listed");
  // preserveResourcesOnDeletion: no resources finalizer.
  EXPECT_FALSE(duo["metadata"].contains("finalizers")) << duo.dump(2);
  json solo = app("web-solo");
  EXPECT_EQ(solo["spec"]["source"]["path"], "mine");
  EXPECT_FALSE(solo["metadata"].contains("ownerReferences"));

  // Deleting the set deletes what it owns only.
  stack_.del("/api/v1/appsets/listed");
  ASSERT_EQ(stack_.last_status(), 200);
  ASSERT_TRUE(wait_until([&] { return app_names() == std::vector<std::string>{"web-solo"}; },
                         std::chrono::seconds(30)))
      << json(app_names()).dump();
}

TEST_F(AppSetTest, ApplyRejectsABadApplicationSetWithItsLineAndAppliesNothing) {
  const std::string text =
      "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: fine\n"
      "spec:\n  project: default\n  source:\n    repoURL: https://example.invalid/a.git\n"
      "    targetRevision: main\n    path: a\n  destination:\n"
      "    server: https://kubernetes.default.svc\n    namespace: a\n---\n"
      "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: bad\n"
      "spec:\n  generators:\n  - nosuch: {}\n  template:\n    metadata:\n      name: x\n"
      "    spec: {}\n";
  auto r = stack_.apply_text("bad.yaml", text);
  EXPECT_EQ(stack_.last_status(), 422) << r.dump(2);
  EXPECT_NE(r.dump().find("bad.yaml:21:"), std::string::npos) << r.dump(2);
  EXPECT_TRUE(stack_.get("/api/v1/apps")["items"].empty());
  EXPECT_TRUE(stack_.get("/api/v1/appsets")["items"].empty());
  stack_.get("/api/v1/appsets/bad");
  EXPECT_EQ(stack_.last_status(), 404);
  // A generator's post selector is read when the set is applied: a malformed one is refused
  // where it is.
  r = stack_.apply_text(
      "picky.yaml",
      "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: picky\n"
      "spec:\n  generators:\n  - list: {elements: [{env: dev}]}\n"
      "    selector: {matchExpressions: [{key: env, operator: Equals}]}\n"
      "  template:\n    metadata:\n      name: x\n    spec: {}\n");
  EXPECT_EQ(stack_.last_status(), 422) << r.dump(2);
  const json detail = r["error"]["details"][0];
  EXPECT_EQ(detail["location"], "picky.yaml:8:56") << r.dump(2);
  EXPECT_EQ(detail["message"], "spec.generators[0].selector.matchExpressions[0].operator 'Equals' "
                               "is not a label selector operator (In, NotIn, Exists, DoesNotExist)")
      << r.dump(2);
  EXPECT_TRUE(stack_.get("/api/v1/appsets")["items"].empty());
}

} // namespace
