// Kinds that left Git, end to end: a real coordinator, delegates hosting the gitops plugin's
// reconciler, capstan-sandbox (checked with kubectl) and a Git remote. An application's objects
// of a kind no longer in its manifests are still pruned, and deleted with the application, by a
// delegate that never rendered that kind: the coordinator hands it the kinds of the resources
// the application last reported (Argo CD's status.resources).
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

class ManagedKindsTest : public GitOpsStackTest {
protected:
  ManagedKindsTest() : GitOpsStackTest("capstan-managed-kinds") {}
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
  json app() { return GitOpsStackTest::app("one"); }
  bool exists(const std::string& kind, const std::string& name) {
    return sandbox_->kubectl({"get", kind, name, "-n", "demo", "-o", "name"}).status.success();
  }
  // Until `one`, held by `holder`, was compared at the remote's head (and is Synced there when
  // `synced`).
  void wait_compared_on(const std::string& holder, bool synced = true) {
    json a;
    ASSERT_TRUE(wait_until(
        [&] {
          a = app();
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

TEST_F(ManagedKindsTest, AKindThatLeftGitIsPrunedByADelegateThatNeverRenderedIt) {
  secret_leaves_git_while_the_holder_changes(true);
  EXPECT_TRUE(wait_until([&] { return !exists("secret", "creds"); }, std::chrono::seconds(30)))
      << app().dump(2);
  EXPECT_TRUE(exists("configmap", "settings"));
}

TEST_F(ManagedKindsTest, AKindThatLeftGitIsDeletedWithTheApplication) {
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

} // namespace
