// The GitOps reconciler against a real capstan-sandbox, real kubectl and real Git remotes.
#include <gtest/gtest.h>

#include <capstan/apps/reconciler.h>
#include <capstan/kube/config.h>
#include <capstan/testing/apps_fixtures.h>
#include <capstan/testing/git_servers.h>
#include <capstan/testing/sandbox.h>
#include <capstan/yaml/yaml.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <mutex>

namespace {

namespace fs = std::filesystem;
using capstan::apps::Application;
using capstan::apps::ApplicationStatus;
using capstan::apps::Reconciler;
using capstan::apps::SyncStatus;
using capstan::kube::HealthStatus;
using namespace capstan::testing;

Application make_app(const std::string& yaml_text) {
  auto doc = capstan::yaml::load(yaml_text, "app.yaml");
  return capstan::apps::parse_application(doc.value, doc.where);
}

std::string app_yaml(const std::string& name, const std::string& url, const std::string& path,
                     const std::string& policy, const std::string& extra = "") {
  return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: " + name +
         "}\nspec:\n  source: {repoURL: '" + url + "', targetRevision: main, path: " + path +
         "}\n  destination: {server: https://kubernetes.default.svc, namespace: demo}\n" + policy +
         extra;
}

class ReconcilerTest : public ::testing::Test {
protected:
  void SetUp() override {
    // Pods of images tagged :fails exit with an error (a failing hook Job).
    sandbox_ = std::make_unique<Sandbox>(
        sandbox_dir_.path(), std::string(capstan::testing::kFastSandbox) +
                                 "failureRules:\n- image: \"*:fails\"\n  reason: Error\n"
                                 "  exitCode: 2\n  message: migration failed\n");
    client_ = std::make_unique<capstan::kube::Client>(
        capstan::kube::load_kubeconfig(sandbox_->kubeconfig()));
    capstan::apps::ReconcilerOptions options;
    options.work_dir = work_.path();
    options.poll_interval = std::chrono::milliseconds(200);
    options.wave_timeout = std::chrono::seconds(60);
    options.log = [this](const std::string& app, const std::string& line) {
      std::lock_guard lock(log_mutex_);
      log_ += app + ": " + line + "\n";
    };
    options.on_status = [this](const ApplicationStatus& s) {
      std::lock_guard lock(log_mutex_);
      if (s.last_operation) {
        operation_phases_[s.name].push_back(s.last_operation->phase + " " +
                                            s.last_operation->revision);
      }
    };
    reconciler_ = std::make_unique<Reconciler>(*client_, options);
    reconciler_->start();
  }
  void TearDown() override {
    reconciler_->stop();
    if (HasFailure()) {
      std::lock_guard lock(log_mutex_);
      std::cerr << "reconciler log:\n" << log_;
      for (const auto& s : reconciler_->statuses()) std::cerr << s.to_json().dump(2) << "\n";
    }
  }

  ApplicationStatus status(const std::string& app) {
    return reconciler_->status(app).value_or(ApplicationStatus{});
  }
  bool synced_healthy(const std::string& app, const std::string& revision = "") {
    auto s = status(app);
    return s.sync == SyncStatus::kSynced && s.health == HealthStatus::kHealthy &&
           (revision.empty() || s.revision == revision);
  }
  std::string kubectl(std::vector<std::string> args) {
    auto r = sandbox_->kubectl(std::move(args));
    EXPECT_TRUE(r.status.success()) << r.err;
    return r.out;
  }
  std::string head(const ReleaseRemote& remote) {
    return git({"rev-parse", "main"}, remote.bare());
  }

  TempDir sandbox_dir_{"capstan-apps-sandbox"};
  TempDir work_{"capstan-apps-work"};
  std::unique_ptr<Sandbox> sandbox_;
  std::unique_ptr<capstan::kube::Client> client_;
  std::unique_ptr<Reconciler> reconciler_;
  // Guarded by log_mutex_:
  std::mutex log_mutex_;
  std::string log_;
  // Application -> "phase revision" of each operation state it reported, in order.
  std::map<std::string, std::vector<std::string>> operation_phases_;
};

TEST_F(ReconcilerTest, AutoSyncWithPrune) {
  ReleaseRemote remote({{"apps/demo/settings.yaml", configmap_yaml("settings", "one")},
                        {"apps/demo/old.yaml", configmap_yaml("old", "x")},
                        {"apps/demo/web.yaml", deployment_yaml("web", "nginx:1.25")}});
  reconciler_->upsert(make_app(app_yaml("demo", remote.url(), "apps/demo",
                                        "  syncPolicy:\n    automated: {prune: true}\n    "
                                        "syncOptions: [CreateNamespace=true]\n")));
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy("demo", head(remote)); }, std::chrono::seconds(60)));
  EXPECT_EQ(kubectl({"get", "configmap", "settings", "-n", "demo", "-o",
                     "jsonpath={.metadata.annotations.argocd\\.argoproj\\.io/tracking-id}"}),
            "demo:/ConfigMap:demo/settings");
  // A commit changes the image, changes a value and removes a file: all three follow.
  remote.commit({{"apps/demo/settings.yaml", configmap_yaml("settings", "two")},
                 {"apps/demo/web.yaml", deployment_yaml("web", "nginx:1.27")}},
                {"apps/demo/old.yaml"});
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy("demo", head(remote)); }, std::chrono::seconds(60)));
  EXPECT_EQ(kubectl({"get", "configmap", "settings", "-n", "demo", "-o", "jsonpath={.data.value}"}),
            "two");
  EXPECT_EQ(kubectl({"get", "deployment", "web", "-n", "demo", "-o",
                     "jsonpath={.spec.template.spec.containers[0].image}"}),
            "nginx:1.27");
  auto r = sandbox_->kubectl({"get", "configmap", "old", "-n", "demo"});
  EXPECT_FALSE(r.status.success()) << "pruned: " << r.out;
  auto s = status("demo");
  ASSERT_EQ(s.history.size(), 2u);
  EXPECT_EQ(s.history.back().revision, head(remote));
  EXPECT_EQ(s.history.back().phase, "Succeeded");
  EXPECT_EQ(s.synced_revision, head(remote));
}

TEST_F(ReconcilerTest, PruneOffLeavesTheObjectOutOfSync) {
  ReleaseRemote remote({{"apps/demo/a.yaml", configmap_yaml("a", "1")},
                        {"apps/demo/b.yaml", configmap_yaml("b", "1")}});
  kubectl({"create", "namespace", "demo"});
  reconciler_->upsert(
      make_app(app_yaml("keep", remote.url(), "apps/demo", "  syncPolicy:\n    automated: {}\n")));
  ASSERT_TRUE(wait_until([&] { return synced_healthy("keep"); }, std::chrono::seconds(60)));
  remote.commit({}, {"apps/demo/b.yaml"});
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = status("keep");
        return s.revision == head(remote) && s.sync == SyncStatus::kOutOfSync;
      },
      std::chrono::seconds(30)));
  auto s = status("keep");
  bool found = false;
  for (const auto& r : s.resources) found = found || (r.key.name == "b" && r.requires_pruning);
  EXPECT_TRUE(found);
  EXPECT_TRUE(sandbox_->kubectl({"get", "configmap", "b", "-n", "demo"}).status.success());
  // A manual sync with prune removes it.
  capstan::apps::SyncRequest request;
  request.prune = true;
  auto record = reconciler_->sync("keep", request);
  EXPECT_EQ(record.phase, "Succeeded") << record.message;
  EXPECT_FALSE(sandbox_->kubectl({"get", "configmap", "b", "-n", "demo"}).status.success());
  ASSERT_TRUE(wait_until([&] { return synced_healthy("keep"); }, std::chrono::seconds(30)));
}

TEST_F(ReconcilerTest, SelfHealAfterEditScaleAndDelete) {
  ReleaseRemote remote({{"apps/demo/settings.yaml", configmap_yaml("settings", "git")},
                        {"apps/demo/web.yaml", deployment_yaml("web", "nginx:1.25", 2)}});
  reconciler_->upsert(make_app(app_yaml("heal", remote.url(), "apps/demo",
                                        "  syncPolicy:\n    automated: {selfHeal: true}\n    "
                                        "syncOptions: [CreateNamespace=true]\n")));
  ASSERT_TRUE(wait_until([&] { return synced_healthy("heal"); }, std::chrono::seconds(60)));

  kubectl({"scale", "deployment", "web", "-n", "demo", "--replicas=5"});
  EXPECT_TRUE(wait_until(
      [&] {
        return sandbox_
                   ->kubectl({"get", "deployment", "web", "-n", "demo", "-o",
                              "jsonpath={.spec.replicas}"})
                   .out == "2";
      },
      std::chrono::seconds(20)));

  kubectl({"patch", "configmap", "settings", "-n", "demo", "--type=merge", "-p",
           R"({"data":{"value":"edited"}})"});
  EXPECT_TRUE(wait_until(
      [&] {
        return sandbox_
                   ->kubectl({"get", "configmap", "settings", "-n", "demo", "-o",
                              "jsonpath={.data.value}"})
                   .out == "git";
      },
      std::chrono::seconds(20)));

  kubectl({"delete", "configmap", "settings", "-n", "demo"});
  EXPECT_TRUE(wait_until(
      [&] {
        return sandbox_
                   ->kubectl({"get", "configmap", "settings", "-n", "demo", "-o",
                              "jsonpath={.data.value}"})
                   .out == "git";
      },
      std::chrono::seconds(20)));
  EXPECT_TRUE(wait_until([&] { return synced_healthy("heal"); }, std::chrono::seconds(30)));
}

TEST_F(ReconcilerTest, WithoutSelfHealDriftIsReportedNotReverted) {
  ReleaseRemote remote({{"apps/demo/settings.yaml", configmap_yaml("settings", "git")}});
  reconciler_->upsert(make_app(
      app_yaml("noheal", remote.url(), "apps/demo",
               "  syncPolicy:\n    automated: {}\n    syncOptions: [CreateNamespace=true]\n")));
  ASSERT_TRUE(wait_until([&] { return synced_healthy("noheal"); }, std::chrono::seconds(60)));
  kubectl({"patch", "configmap", "settings", "-n", "demo", "--type=merge", "-p",
           R"({"data":{"value":"edited"}})"});
  ASSERT_TRUE(wait_until([&] { return status("noheal").sync == SyncStatus::kOutOfSync; },
                         std::chrono::seconds(20)));
  auto s = status("noheal");
  ASSERT_FALSE(s.resources.empty());
  EXPECT_EQ(s.resources[0].differences, std::vector<std::string>{"/data/value"});
  EXPECT_EQ(kubectl({"get", "configmap", "settings", "-n", "demo", "-o", "jsonpath={.data.value}"}),
            "edited");
}

TEST_F(ReconcilerTest, IgnoreDifferencesKeepsTheAppSynced) {
  ReleaseRemote remote({{"apps/demo/web.yaml", deployment_yaml("web", "nginx:1.25", 1)}});
  reconciler_->upsert(
      make_app(app_yaml("ignore", remote.url(), "apps/demo",
                        "  syncPolicy:\n    automated: {selfHeal: true}\n    syncOptions: "
                        "[CreateNamespace=true, RespectIgnoreDifferences=true]\n",
                        "  ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    "
                        "jsonPointers: [/spec/replicas]\n")));
  ASSERT_TRUE(wait_until([&] { return synced_healthy("ignore"); }, std::chrono::seconds(60)));
  kubectl({"scale", "deployment", "web", "-n", "demo", "--replicas=3"});
  ASSERT_TRUE(wait_until(
      [&] {
        return sandbox_
                   ->kubectl({"get", "deployment", "web", "-n", "demo", "-o",
                              "jsonpath={.status.readyReplicas}"})
                   .out == "3";
      },
      std::chrono::seconds(20)));
  EXPECT_TRUE(wait_until([&] { return synced_healthy("ignore"); }, std::chrono::seconds(10)));
  EXPECT_EQ(kubectl({"get", "deployment", "web", "-n", "demo", "-o", "jsonpath={.spec.replicas}"}),
            "3");
}

TEST_F(ReconcilerTest, HooksAndWavesRunInOrder) {
  FileSet files;
  for (const auto& entry : fs::directory_iterator(
           capstan::testing::source_dir() / "tests/fixtures/apps/argocd-example-apps/sync-waves")) {
    files["apps/waves/" + entry.path().filename().string()] =
        capstan::testing::read_file(entry.path());
  }
  ReleaseRemote remote(files);
  reconciler_->upsert(make_app(
      app_yaml("waves", remote.url(), "apps/waves",
               "  syncPolicy:\n    automated: {}\n    syncOptions: [CreateNamespace=true]\n")));
  ASSERT_TRUE(wait_until([&] { return synced_healthy("waves"); }, std::chrono::seconds(90)));
  auto s = status("waves");
  ASSERT_TRUE(s.last_operation);
  EXPECT_EQ(s.last_operation->phase, "Succeeded") << s.last_operation->message;
  std::vector<std::string> order;
  for (const auto& r : s.last_operation->resources) {
    order.push_back(r["kind"].get<std::string>() + "/" + r["name"].get<std::string>());
  }
  std::string rev7 = head(remote).substr(0, 7);
  EXPECT_EQ(order, (std::vector<std::string>{"Job/upgrade-sql-schema" + rev7 + "-presync",
                                             "Service/backend", "ReplicaSet/backend",
                                             "Job/maint-page-up", "Service/frontend",
                                             "ReplicaSet/frontend", "Job/maint-page-down"}));
  // Each wave waited for the one before: the hooks ran to completion.
  EXPECT_EQ(
      kubectl({"get", "job", "maint-page-up", "-n", "demo", "-o", "jsonpath={.status.succeeded}"}),
      "1");
  EXPECT_EQ(kubectl({"get", "job", "upgrade-sql-schema" + rev7 + "-presync", "-n", "demo", "-o",
                     "jsonpath={.status.succeeded}"}),
            "1");
}

TEST_F(ReconcilerTest, HookSucceededDeletesTheHookAndAFailedHookFailsTheSync) {
  std::string hook =
      "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n"
      "    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: "
      "HookSucceeded\n"
      "spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n"
      "      containers:\n      - name: m\n        image: IMAGE\n";
  auto with_image = [&](const std::string& image) {
    std::string h = hook;
    h.replace(h.find("IMAGE"), 5, image);
    return h;
  };
  ReleaseRemote remote({{"apps/demo/hook.yaml", with_image("migrate:v1")},
                        {"apps/demo/cm.yaml", configmap_yaml("cm", "1")}});
  reconciler_->upsert(make_app(
      app_yaml("hooks", remote.url(), "apps/demo",
               "  syncPolicy:\n    automated: {}\n    syncOptions: [CreateNamespace=true]\n")));
  ASSERT_TRUE(wait_until([&] { return synced_healthy("hooks"); }, std::chrono::seconds(60)));
  EXPECT_TRUE(wait_until(
      [&] {
        return !sandbox_->kubectl({"get", "job", "migrate", "-n", "demo"}).status.success();
      },
      std::chrono::seconds(10)))
      << "HookSucceeded deletes the finished hook";
  // A hook whose pod fails (the sandbox fails images tagged :fails) fails the sync; the
  // ConfigMap of the Sync phase is not applied.
  remote.commit({{"apps/demo/hook.yaml", with_image("migrate:fails")},
                 {"apps/demo/cm.yaml", configmap_yaml("cm", "2")}});
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = status("hooks");
        return s.last_operation && s.last_operation->revision == head(remote) &&
               s.last_operation->phase == "Failed";
      },
      std::chrono::seconds(60)));
  auto s = status("hooks");
  EXPECT_TRUE(s.has_condition("SyncError"));
  EXPECT_NE(s.last_operation->message.find("Job migrate is Degraded"), std::string::npos)
      << s.last_operation->message;
  EXPECT_EQ(kubectl({"get", "configmap", "cm", "-n", "demo", "-o", "jsonpath={.data.value}"}), "1");
  EXPECT_EQ(s.sync, SyncStatus::kOutOfSync);
  // The failed sync is the operation state, not a deployment: the history keeps the first sync
  // alone, with Argo CD's names for its times.
  ASSERT_EQ(s.history.size(), 1u);
  EXPECT_EQ(s.history[0].phase, "Succeeded");
  EXPECT_NE(s.history[0].revision, head(remote));
  const auto entry = s.to_json()["history"][0];
  EXPECT_EQ(entry["deployedAt"], s.history[0].finished_at);
  EXPECT_EQ(entry["deployStartedAt"], s.history[0].started_at);
  // Each sync was reported Running before it ended.
  {
    std::lock_guard lock(log_mutex_);
    const auto& phases = operation_phases_["hooks"];
    auto at = [&](const std::string& p) {
      return std::find(phases.begin(), phases.end(), p) - phases.begin();
    };
    const std::string failed = "Failed " + head(remote);
    const std::string running = "Running " + head(remote);
    EXPECT_LT(at(running), at(failed)) << ::testing::PrintToString(phases);
    EXPECT_LT(at(failed), static_cast<std::ptrdiff_t>(phases.size()))
        << ::testing::PrintToString(phases);
  }
  // Nothing runs now: there is nothing to terminate.
  EXPECT_FALSE(reconciler_->terminate("hooks"));
}

TEST_F(ReconcilerTest, InvalidYamlIsAComparisonErrorNamingFileAndLine) {
  ReleaseRemote remote({{"apps/demo/good.yaml", configmap_yaml("good", "1")}});
  reconciler_->upsert(make_app(
      app_yaml("broken", remote.url(), "apps/demo",
               "  syncPolicy:\n    automated: {}\n    syncOptions: [CreateNamespace=true]\n")));
  ASSERT_TRUE(wait_until([&] { return synced_healthy("broken"); }, std::chrono::seconds(60)));
  remote.commit(
      {{"apps/demo/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n"}});
  ASSERT_TRUE(wait_until([&] { return status("broken").has_condition("ComparisonError"); },
                         std::chrono::seconds(30)));
  auto s = status("broken");
  EXPECT_EQ(s.sync, SyncStatus::kUnknown);
  EXPECT_NE(s.conditions[0].message.find("apps/demo/bad.yaml:"), std::string::npos)
      << s.conditions[0].message;
  // Fixed in Git: the condition goes away.
  remote.commit({{"apps/demo/bad.yaml", configmap_yaml("bad", "fixed")}});
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy("broken", head(remote)); }, std::chrono::seconds(30)));
  EXPECT_FALSE(status("broken").has_condition("ComparisonError"));
}

TEST_F(ReconcilerTest, UnreachableRepositoryIsUnknownWithACondition) {
  const capstan::testing::ClosedPort closed; // nothing listens there, nor can while it lives
  int port = closed.port();
  reconciler_->upsert(
      make_app(app_yaml("lost", "git://127.0.0.1:" + std::to_string(port) + "/nowhere.git",
                        "apps/demo", "  syncPolicy:\n    automated: {}\n")));
  ASSERT_TRUE(wait_until([&] { return status("lost").has_condition("ComparisonError"); },
                         std::chrono::seconds(30)));
  auto s = status("lost");
  EXPECT_EQ(s.sync, SyncStatus::kUnknown);
  EXPECT_NE(s.conditions[0].message.find("failed to list refs of git://127.0.0.1"),
            std::string::npos)
      << s.conditions[0].message;
}

TEST_F(ReconcilerTest, GitDaemonRemoteAndRollback) {
  TempDir root;
  capstan::testing::make_remote(root.path(), "shop.git",
                                {{{"apps/shop/cm.yaml", configmap_yaml("shop", "v1")}}});
  capstan::testing::GitDaemon daemon(root.path());
  std::string url = daemon.url("shop.git");
  git({"clone", "-q", (root / "shop.git").string(), (root / "work").string()});
  reconciler_->upsert(make_app(
      app_yaml("shop", url, "apps/shop",
               "  syncPolicy:\n    automated: {}\n    syncOptions: [CreateNamespace=true]\n")));
  ASSERT_TRUE(wait_until([&] { return synced_healthy("shop"); }, std::chrono::seconds(60)));
  std::string first = status("shop").revision;
  capstan::testing::write_file(root / "work/apps/shop/cm.yaml", configmap_yaml("shop", "v2"));
  git({"commit", "-qam", "v2"}, root / "work");
  git({"push", "-q", "origin", "HEAD:main"}, root / "work");
  ASSERT_TRUE(wait_until(
      [&] {
        return kubectl({"get", "configmap", "shop", "-n", "demo", "-o",
                        "jsonpath={.data.value}"}) == "v2";
      },
      std::chrono::seconds(30)));
  auto s = status("shop");
  ASSERT_EQ(s.history.size(), 2u);
  // Automated sync off, then roll back to the first entry.
  auto app = make_app(app_yaml("shop", url, "apps/shop", ""));
  reconciler_->upsert(app);
  auto record = reconciler_->rollback("shop", s.history.front().id);
  EXPECT_EQ(record.phase, "Succeeded") << record.message;
  EXPECT_EQ(record.revision, first);
  EXPECT_EQ(kubectl({"get", "configmap", "shop", "-n", "demo", "-o", "jsonpath={.data.value}"}),
            "v1");
  EXPECT_TRUE(wait_until([&] { return status("shop").sync == SyncStatus::kOutOfSync; },
                         std::chrono::seconds(20)))
      << "the target revision is still v2";
}

} // namespace
