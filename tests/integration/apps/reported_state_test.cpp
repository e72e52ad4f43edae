// What delegates report and the coordinator hands on, end to end: a real coordinator, delegates
// hosting the gitops plugin's reconciler, capstan-sandbox (checked with kubectl) and a Git
// remote.
// - Kinds that left Git: an application's objects of a kind no longer in its manifests are still
//   pruned, and deleted with the application, by a delegate that never rendered that kind (the
//   coordinator hands it the kinds of the resources last reported, Argo CD's status.resources).
// - A Kubeconfig cluster's API server: read by the coordinator when it can, else reported by the
//   delegate that loaded the kubeconfig, so that destination.server names the cluster.
#include <gtest/gtest.h>

#include <signal.h>

#include <capstan/testing/git_servers.h>

#include "gitops_stack_test.h"

namespace {

namespace fs = std::filesystem;
using capstan::testing::configmap_yaml;
using capstan::testing::GitOpsStackTest;
using capstan::testing::ReleaseRemote;
using capstan::testing::Sandbox;
using capstan::testing::wait_until;
using nlohmann::json;

std::string secret_yaml(const std::string& name) {
  return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name +
         "\ntype: Opaque\nstringData:\n  token: not-a-real-token\n";
}

class ReportedStateTest : public GitOpsStackTest {
protected:
  ReportedStateTest() : GitOpsStackTest("capstan-reported-state") {}
  void SetUp() override {
    sandbox_ = std::make_unique<Sandbox>(dir_ / "sandbox");
    GitOpsStackTest::SetUp();
  }
  // Application `one` of apps/one with the resources finalizer; `prune`: automated prune.
  void apply_app(bool prune) {
    const std::string app =
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: one\n"
        "  finalizers: [resources-finalizer.argocd.argoproj.io]\n"
        "spec:\n  source:\n    repoURL: " +
        remote_.url() +
        "\n    targetRevision: main\n    path: apps/one\n"
        "  destination:\n    name: sandbox\n    namespace: demo\n"
        "  syncPolicy:\n    automated: {prune: " +
        (prune ? "true" : "false") + "}\n    syncOptions: [CreateNamespace=true]\n";
    auto applied = stack_.apply_text("apps.yaml", cluster_yaml() + "---\n" + app);
    ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  }
  json app(const std::string& name = "one") { return GitOpsStackTest::app(name); }
  // The sandbox's API server URL, as its kubeconfig names it.
  std::string sandbox_server() {
    return sandbox_
        ->kubectl({"config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"})
        .out;
  }
  bool exists(const std::string& kind, const std::string& name) {
    return sandbox_->kubectl({"get", kind, name, "-n", "demo", "-o", "name"}).status.success();
  }
  // Until `one`, held by `holder`, was compared at the remote's head (and is Synced there when
  // `synced`).
  void wait_compared_on(const std::string& holder, bool synced = true,
                        const std::string& name = "one") {
    json a;
    ASSERT_TRUE(wait_until(
        [&] {
          a = app(name);
          const json s = a.value("status", json::object());
          return a.value("assignment", json::object()).value("delegate", "") == holder &&
                 (!synced || s.value("sync", json::object()).value("status", "") == "Synced") &&
                 s.value("sync", json::object()).value("revision", "") == remote_.head();
        },
        std::chrono::seconds(60)))
        << a.dump(2);
  }
  // The first delegate syncs ConfigMap `settings` and Secret `creds`; it stops, the Secret
  // leaves Git (no Secret is left in the manifests), and a second delegate takes `one` over.
  void secret_leaves_git_while_the_holder_changes(bool prune) {
    auto& east = delegate("east");
    ASSERT_TRUE(stack_.wait_for_delegates(1));
    apply_app(prune);
    wait_compared_on("east");
    ASSERT_TRUE(exists("configmap", "settings"));
    ASSERT_TRUE(exists("secret", "creds"));
    east.child().signal(SIGKILL);
    ASSERT_TRUE(east.child().wait_for(std::chrono::seconds(10)).has_value());
    remote_.commit({}, {"apps/one/creds.yaml"});
    delegate("west");
    wait_compared_on("west", prune);
  }

  ReleaseRemote remote_{{{"apps/one/settings.yaml", configmap_yaml("settings", "1")},
                         {"apps/one/creds.yaml", secret_yaml("creds")}}};
};

TEST_F(ReportedStateTest, AKindThatLeftGitIsPrunedByADelegateThatNeverRenderedIt) {
  secret_leaves_git_while_the_holder_changes(true);
  EXPECT_TRUE(wait_until([&] { return !exists("secret", "creds"); }, std::chrono::seconds(30)))
      << app().dump(2);
  EXPECT_TRUE(exists("configmap", "settings"));
}

TEST_F(ReportedStateTest, AKindThatLeftGitIsDeletedWithTheApplication) {
  secret_leaves_git_while_the_holder_changes(false);
  // Without prune the Secret stays, reported as needing pruning by the delegate that never
  // rendered a Secret.
  json a;
  ASSERT_TRUE(wait_until(
      [&] {
        a = app();
        for (const auto& r : a["status"].value("resources", json::array())) {
          if (r.value("kind", "") == "Secret" && r.value("requiresPruning", false)) return true;
        }
        return false;
      },
      std::chrono::seconds(30)))
      << a.dump(2);
  ASSERT_TRUE(exists("secret", "creds"));
  auto r = stack_.cli({"delete", "app", "one"});
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  ASSERT_TRUE(wait_until(
      [&] {
        stack_.get("/api/v1/apps/one");
        return stack_.last_status() == 404;
      },
      std::chrono::seconds(60)))
      << app().dump(2);
  EXPECT_FALSE(exists("configmap", "settings"));
  EXPECT_FALSE(exists("secret", "creds"));
}

// An application of apps/one on main of `url` to namespace demo of the cluster `destination`
// names ("server: URL" or "name: CLUSTER").
std::string app_to(const std::string& name, const std::string& url,
                   const std::string& destination) {
  return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: " + name +
         "\nspec:\n  source:\n    repoURL: " + url +
         "\n    targetRevision: main\n    path: apps/one\n  destination:\n    " + destination +
         "\n    namespace: demo\n  syncPolicy:\n    automated: {}\n"
         "    syncOptions: [CreateNamespace=true]\n";
}

TEST_F(ReportedStateTest, AKubeconfigPathReadableHereGivesTheServerAtOnce) {
  delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  const std::string server = sandbox_server();
  ASSERT_EQ(server.rfind("https://", 0), 0u) << server;
  auto applied = stack_.apply_text(
      "apps.yaml",
      cluster_yaml() + "---\n" + app_to("byserver", remote_.url(), "server: " + server + "/"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  wait_compared_on("east", true, "byserver");
  EXPECT_TRUE(exists("configmap", "settings"));
}

TEST_F(ReportedStateTest, AKubeconfigOnlyTheDelegateReadsGivesTheServerOnceItLoadedIt) {
  delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  const std::string server = sandbox_server();
  // The kubeconfig is a secret: the coordinator does not read it, the delegate does.
  std::string kubeconfig = capstan::testing::read_file(sandbox_->kubeconfig());
  std::string indented;
  for (std::size_t start = 0; start < kubeconfig.size();) {
    auto end = kubeconfig.find('\n', start);
    if (end == std::string::npos) end = kubeconfig.size();
    indented += "      " + kubeconfig.substr(start, end - start) + "\n";
    start = end + 1;
  }
  const std::string objects =
      "environment:\n  identifier: dev\n  name: dev\n  type: PreProduction\n---\n"
      "secret:\n  identifier: sandbox_kubeconfig\n  name: sandbox kubeconfig\n"
      "  type: SecretText\n  spec:\n    secretManagerIdentifier: harnessSecretManager\n"
      "    valueType: Inline\n    value: |\n" +
      indented +
      "---\nconnector:\n  identifier: sandbox_api\n  name: sandbox API\n  type: K8sCluster\n"
      "  spec:\n    credential:\n      type: Kubeconfig\n      spec:\n"
      "        kubeconfigRef: sandbox_kubeconfig\n---\n"
      "gitopsCluster:\n  identifier: sandbox\n  name: sandbox\n  connectorRef: sandbox_api\n"
      "  environments: [dev]\n";
  auto applied = stack_.apply_text(
      "apps.yaml", objects + "---\n" + app_to("byserver", remote_.url(), "server: " + server));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  // No delegate has loaded the kubeconfig yet: the server names no cluster.
  json a;
  ASSERT_TRUE(wait_until(
      [&] {
        a = stack_.get("/api/v1/apps/byserver");
        return a["assignment"].value("message", "").find(server) != std::string::npos;
      },
      std::chrono::seconds(30)))
      << a.dump(2);
  EXPECT_EQ(a["assignment"]["delegate"], "");
  // An application naming the cluster makes a delegate load it; the server it reports then
  // places the other one too.
  applied = stack_.apply_text("named.yaml", app_to("byname", remote_.url(), "name: sandbox"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  wait_compared_on("east", true, "byserver");
  EXPECT_TRUE(exists("configmap", "settings"));
  // The status shown stays Argo CD's: the report is taken out of it.
  EXPECT_FALSE(stack_.get("/api/v1/apps/byname")["status"].contains("clusterServer"));
}

} // namespace
