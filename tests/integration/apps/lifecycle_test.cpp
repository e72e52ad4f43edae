// The life of GitOps applications across delegates and coordinator restarts, end to end: a real
// coordinator, delegates hosting the gitops plugin's reconciler, capstan-sandbox and a real Git
// remote. Cascading deletion waits for a delegate to delete the resources (Argo CD's resources
// finalizer) whoever holds the application, and survives a lost holder and a restart.
#include <gtest/gtest.h>

#include <signal.h>

#include <capstan/testing/git_servers.h>

#include "gitops_stack_test.h"

namespace {

namespace fs = std::filesystem;
using capstan::testing::configmap_yaml;
using capstan::testing::git;
using capstan::testing::GitOpsStackTest;
using capstan::testing::Sandbox;
using capstan::testing::wait_until;
using nlohmann::json;

class LifecycleTest : public GitOpsStackTest {
protected:
  LifecycleTest() : GitOpsStackTest("capstan-lifecycle") {}
  void SetUp() override {
    sandbox_ = std::make_unique<Sandbox>(dir_ / "sandbox");
    remote_ =
        capstan::testing::make_remote(dir_.path(), "release.git",
                                      {{{"apps/one/settings.yaml", configmap_yaml("one", "1")},
                                        {"apps/two/settings.yaml", configmap_yaml("two", "2")}}});
    GitOpsStackTest::SetUp();
  }
  // `extra_spec`: more lines under spec:, each "  key: value\n".
  std::string app_yaml(const std::string& name, const std::string& path, bool finalizer = true,
                       const std::string& extra_spec = "",
                       const std::string& destination = "name: sandbox") const {
    return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: " + name +
           (finalizer ? "\n  finalizers: [resources-finalizer.argocd.argoproj.io]" : "") +
           "\nspec:\n  project: default\n  source:\n    repoURL: file://" + remote_.string() +
           "\n    targetRevision: main\n    path: " + path + "\n  destination:\n    " +
           destination +
           "\n    namespace: demo\n  syncPolicy:\n    automated: {prune: true, selfHeal: true}\n"
           "    syncOptions: [CreateNamespace=true]\n" +
           extra_spec;
  }
  void wait_synced(const std::string& name) {
    json a;
    ASSERT_TRUE(wait_until([&] { return synced_healthy(a = app(name)); }, std::chrono::seconds(60)))
        << a.dump(2);
  }
  bool configmap_exists(const std::string& name) {
    auto r = sandbox_->kubectl({"get", "configmap", name, "-n", "demo", "-o", "name"});
    return r.status.success();
  }

  fs::path remote_;
};

TEST_F(LifecycleTest, CascadingDeletionWaitsForADelegateAcrossALostHolderAndARestart) {
  auto& east = delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  auto applied =
      stack_.apply_text("apps.yaml", cluster_yaml() + "---\n" + app_yaml("one", "apps/one"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  wait_synced("one");
  ASSERT_TRUE(configmap_exists("one"));
  ASSERT_EQ(app("one")["assignment"]["delegate"], "east");

  // Its holder stops answering: the deletion cannot finish, the application shows as Deleting
  // and its resources stay.
  east.child().signal(SIGSTOP);
  auto r = stack_.cli({"delete", "app", "one"});
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  EXPECT_NE(r.out.find("application/one deleting"), std::string::npos) << r.out;
  json a = app("one");
  ASSERT_EQ(stack_.last_status(), 200);
  EXPECT_FALSE(a["metadata"].value("deletionTimestamp", "").empty()) << a.dump(2);
  r = stack_.cli({"apps", "list"});
  EXPECT_NE(r.out.find("Deleting"), std::string::npos) << r.out;
  r = stack_.cli({"apps", "get", "one"});
  EXPECT_NE(r.out.find("Deleting:"), std::string::npos) << r.out;
  // A second delete is answered the same; a sync is refused; so is applying it again.
  auto again = stack_.del("/api/v1/objects/application/one");
  EXPECT_EQ(stack_.last_status(), 202) << again.dump(2);
  EXPECT_TRUE(again.value("deleting", false));
  stack_.post("/api/v1/apps/one/sync", json::object());
  EXPECT_EQ(stack_.last_status(), 409);
  auto refused = stack_.apply_text("again.yaml", app_yaml("one", "apps/one"));
  EXPECT_EQ(stack_.last_status(), 422) << refused.dump(2);
  EXPECT_NE(refused.dump().find("is being deleted"), std::string::npos) << refused.dump(2);
  EXPECT_TRUE(configmap_exists("one"));

  // The coordinator restarts: the application is still being deleted.
  stack_.kill_coordinator();
  stack_.start_coordinator();
  a = app("one");
  ASSERT_EQ(stack_.last_status(), 200) << a.dump(2);
  EXPECT_FALSE(a["metadata"].value("deletionTimestamp", "").empty()) << a.dump(2);
  EXPECT_TRUE(configmap_exists("one"));

  // Another delegate takes it over from the lost holder and finishes the deletion.
  delegate("west");
  ASSERT_TRUE(wait_until(
      [&] {
        stack_.get("/api/v1/apps/one");
        return stack_.last_status() == 404;
      },
      std::chrono::seconds(60)));
  EXPECT_FALSE(configmap_exists("one"));
  EXPECT_NE(delegates_.back()->log().find("deleted 1 resource(s)"), std::string::npos)
      << delegates_.back()->log();
  auto audit = stack_.get("/api/v1/audit?target=one");
  EXPECT_NE(audit.dump().find("deletedResources"), std::string::npos) << audit.dump(2);
  east.child().signal(SIGKILL);
}

TEST_F(LifecycleTest, DeletionWithoutCascadeOrFinalizerIsAtOnceAndKeepsTheResources) {
  delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  auto applied = stack_.apply_text("apps.yaml",
                                   cluster_yaml() + "---\n" + app_yaml("one", "apps/one") +
                                       "---\n" + app_yaml("two", "apps/two", /*finalizer=*/false));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  wait_synced("one");
  wait_synced("two");

  auto r = stack_.cli({"delete", "app", "one", "--cascade=false"});
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  EXPECT_NE(r.out.find("application/one deleted"), std::string::npos) << r.out;
  app("one");
  EXPECT_EQ(stack_.last_status(), 404);
  r = stack_.cli({"delete", "app", "two"});
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  app("two");
  EXPECT_EQ(stack_.last_status(), 404);
  r = stack_.cli({"delete", "app", "two", "--cascade=maybe"});
  EXPECT_FALSE(r.status.success());
  EXPECT_NE(r.err.find("--cascade must be true or false"), std::string::npos) << r.err;

  // Both let go at once: their delegate stops reconciling them and leaves their resources.
  ASSERT_TRUE(wait_until(
      [&] {
        return delegates_.back()->log().find("application two: no longer reconciled") !=
               std::string::npos;
      },
      std::chrono::seconds(20)));
  EXPECT_TRUE(configmap_exists("one"));
  EXPECT_TRUE(configmap_exists("two"));
}

TEST_F(LifecycleTest, ADeletionThatFailsIsRetriedUntilItsSourceCanBeRead) {
  // The application is deleted before any delegate could read its source: the delegate that
  // takes it cannot tell its resources, says so (DeletionError) and tries again.
  const fs::path moved = dir_ / "moved.git";
  auto applied =
      stack_.apply_text("apps.yaml", cluster_yaml() + "---\n" + app_yaml("one", "apps/one"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  fs::rename(remote_, moved);
  auto d = stack_.del("/api/v1/objects/application/one");
  ASSERT_EQ(stack_.last_status(), 202) << d.dump(2);
  delegate("east");
  json a;
  ASSERT_TRUE(wait_until(
      [&] {
        a = app("one");
        return a.dump().find("DeletionError") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << a.dump(2);
  EXPECT_NE(a.dump().find("cannot tell which resources application 'one' manages"),
            std::string::npos)
      << a.dump(2);
  fs::rename(moved, remote_);
  ASSERT_TRUE(wait_until(
      [&] {
        stack_.get("/api/v1/apps/one");
        return stack_.last_status() == 404;
      },
      std::chrono::seconds(60)));
  EXPECT_FALSE(configmap_exists("one"));
}

TEST_F(LifecycleTest, OperationHistoryOutlivesFailoverAndACoordinatorRestart) {
  auto& east = delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  auto applied = stack_.apply_text(
      "apps.yaml",
      cluster_yaml() + "---\n" + app_yaml("one", "apps/one", false, "  revisionHistoryLimit: 3\n"));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  wait_synced("one");
  auto history = [&] { return app("one")["status"].value("history", json::array()); };
  ASSERT_TRUE(wait_until([&] { return history().size() == 1; }, std::chrono::seconds(30)));
  auto r = stack_.cli({"apps", "sync", "one"});
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  ASSERT_TRUE(wait_until([&] { return history().size() == 2; }, std::chrono::seconds(30)));

  // Its delegate dies: the application moves, and its history stays.
  delegate("west");
  ASSERT_TRUE(stack_.wait_for_delegates(2));
  east.child().signal(SIGKILL);
  json a;
  ASSERT_TRUE(wait_until(
      [&] {
        a = app("one");
        return a["assignment"]["delegate"] == "west" && synced_healthy(a);
      },
      std::chrono::seconds(30)))
      << a.dump(2);
  json h = a["status"]["history"];
  ASSERT_EQ(h.size(), 2u) << a.dump(2);
  EXPECT_EQ(h[0]["id"], 1);
  EXPECT_EQ(h[0]["initiatedBy"], "automated");
  EXPECT_EQ(h[1]["id"], 2);
  EXPECT_EQ(h[1]["delegate"], "east");
  r = stack_.cli({"apps", "sync", "one"});
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  ASSERT_TRUE(wait_until([&] { return (h = history()).size() == 3; }, std::chrono::seconds(30)))
      << h.dump(2);
  EXPECT_EQ(h[2]["id"], 3);
  EXPECT_EQ(h[2]["delegate"], "west");

  // The coordinator restarts: the history is still there, and a rollback to an entry the lost
  // delegate made runs on the new one; the oldest entry goes (revisionHistoryLimit 3).
  stack_.kill_coordinator();
  stack_.start_coordinator();
  ASSERT_EQ(history().size(), 3u);
  ASSERT_TRUE(wait_until([&] { return app("one")["assignment"]["delegate"] == "west"; },
                         std::chrono::seconds(30)));
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  r = stack_.cli({"apps", "rollback", "one", "2"});
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  ASSERT_TRUE(
      wait_until([&] { return (h = history()).back()["id"] == 4; }, std::chrono::seconds(30)))
      << h.dump(2);
  ASSERT_EQ(h.size(), 3u) << h.dump(2);
  EXPECT_EQ(h[0]["id"], 2);
  EXPECT_EQ(h[2]["id"], 4);
  EXPECT_NE(h[2]["initiatedBy"].get<std::string>().find("(rollback to 2)"), std::string::npos)
      << h.dump(2);
  r = stack_.cli({"apps", "history", "one"});
  EXPECT_NE(r.out.find("rollback to 2"), std::string::npos) << r.out;
  r = stack_.cli({"apps", "rollback", "one", "1"});
  EXPECT_FALSE(r.status.success());
  EXPECT_NE(r.err.find("has no history entry 1"), std::string::npos) << r.err;
}

// destination.server resolves as Argo CD's: to the registered GitOps cluster with that API
// server URL, https://kubernetes.default.svc being the cluster the delegate runs in
// (InheritFromDelegate); a server nothing matches is named in the application's message. The
// clusters generator's `name` is the cluster's name and `server` its URL, as in Argo CD.
TEST_F(LifecycleTest, DestinationServerResolvesLikeArgoCD) {
  delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  const std::string in_cluster =
      "connector:\n  identifier: in_cluster\n  name: in cluster\n  type: K8sCluster\n"
      "  spec:\n    credential:\n      type: InheritFromDelegate\n---\n"
      "gitopsCluster:\n  identifier: incluster\n  name: in-cluster\n"
      "  connectorRef: in_cluster\n  environments: [dev]\n";
  const std::string set =
      "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: everywhere\n"
      "spec:\n  generators:\n  - clusters: {}\n  template:\n    metadata:\n"
      "      name: 'web-{{name}}'\n      annotations: {server: '{{server}}'}\n    spec:\n"
      "      project: default\n      source:\n        repoURL: file://" +
      remote_.string() +
      "\n        targetRevision: main\n        path: apps/one\n      destination:\n"
      "        server: '{{server}}'\n        namespace: demo\n";
  auto applied = stack_.apply_text(
      "apps.yaml",
      "environment:\n  identifier: dev\n  name: dev\n  type: PreProduction\n---\n" + in_cluster +
          "---\n" +
          app_yaml("local", "apps/one", false, "", "server: https://kubernetes.default.svc") +
          "---\n" + app_yaml("nowhere", "apps/two", false, "", "server: https://10.9.9.9:6443") +
          "---\n" + set);
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);
  json a;
  ASSERT_TRUE(wait_until(
      [&] {
        a = app("nowhere");
        return a["assignment"].value("message", "").find("https://10.9.9.9:6443") !=
               std::string::npos;
      },
      std::chrono::seconds(30)))
      << a.dump(2);
  EXPECT_NE(a["assignment"]["message"].get<std::string>().find(
                "https://kubernetes.default.svc (incluster)"),
            std::string::npos)
      << a.dump(2);
  EXPECT_EQ(a["assignment"]["delegate"], "");
  // The in-cluster application is given to a delegate (which reconciles it with its own
  // cluster's credentials).
  ASSERT_TRUE(wait_until([&] { return app("local")["assignment"]["delegate"] == "east"; },
                         std::chrono::seconds(30)))
      << app("local").dump(2);
  // One application per cluster with a known server: named by the cluster's name.
  ASSERT_TRUE(wait_until(
      [&] {
        a = app("web-in-cluster");
        return stack_.last_status() == 200;
      },
      std::chrono::seconds(30)))
      << stack_.get("/api/v1/appsets/everywhere").dump(2);
  EXPECT_EQ(a["metadata"]["annotations"]["server"], "https://kubernetes.default.svc");
  EXPECT_EQ(a["spec"]["destination"]["server"], "https://kubernetes.default.svc");
}

} // namespace
