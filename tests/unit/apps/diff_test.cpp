// Diff normalisation, sync status and health.
#include <gtest/gtest.h>

#include <capstan/apps/diff.h>

namespace {

using capstan::apps::diff_object;
using capstan::apps::SyncStatus;
using nlohmann::json;

json desired_deployment() {
  return json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                 "annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                   "ports": [{"containerPort": 80}], "resources": {}}]}}}})");
}

// What a server returns for it: defaults, status, managed fields, server-owned metadata.
json live_deployment() {
  json l = desired_deployment();
  l["metadata"]["uid"] = "1234";
  l["metadata"]["resourceVersion"] = "42";
  l["metadata"]["generation"] = 3;
  l["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z";
  l["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1";
  l["metadata"]["managedFields"] = json::parse(R"([
    {"manager": "capstan-gitops", "operation": "Apply", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}},
                  "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                     "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}},
    {"manager": "kube-controller-manager", "operation": "Update", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:status": {"f:replicas": {}}}}])");
  l["spec"]["strategy"] = {{"type", "RollingUpdate"}};
  l["spec"]["revisionHistoryLimit"] = 10;
  auto& c = l["spec"]["template"]["spec"]["containers"][0];
  c["imagePullPolicy"] = "IfNotPresent";
  c["terminationMessagePath"] = "/dev/termination-log";
  c["ports"][0]["protocol"] = "TCP";
  c.erase("resources");
  l["status"] = {{"replicas", 2}, {"readyReplicas", 2}};
  return l;
}

TEST(Diff, ServerFilledFieldsAreNotDifferences) {
  EXPECT_TRUE(diff_object(desired_deployment(), live_deployment()).empty());
}

TEST(Diff, ChangedFieldsAreNamed) {
  json live = live_deployment();
  live["spec"]["replicas"] = 5;
  live["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.25";
  live["metadata"]["labels"]["app"] = "other";
  EXPECT_EQ(diff_object(desired_deployment(), live),
            (std::vector<std::string>{"/metadata/labels/app", "/spec/replicas",
                                      "/spec/template/spec/containers/0/image"}));
  live = live_deployment();
  live["spec"]["template"]["spec"]["containers"].push_back({{"name", "sidecar"}});
  EXPECT_EQ(diff_object(desired_deployment(), live),
            (std::vector<std::string>{"/spec/template/spec/containers"}));
}

TEST(Diff, FieldsRemovedFromGitAreDifferencesThroughManagedFields) {
  json desired = desired_deployment();
  desired["metadata"].erase("labels");
  desired["spec"].erase("replicas");
  json live = live_deployment();
  EXPECT_EQ(diff_object(desired, live),
            (std::vector<std::string>{"/metadata/labels/app", "/spec/replicas"}));
  // Fields another manager set are not ours to miss.
  live["metadata"]["labels"]["by-hand"] = "x";
  EXPECT_EQ(diff_object(desired, live).size(), 2u);
}

TEST(Diff, ListKeysWithServerDefaultsMatchTheDesiredItem) {
  // The server records a container port under its full key, protocol defaulted to TCP; Git's
  // port leaves the protocol out and is still the same item.
  json live = live_deployment();
  live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
      ["k:{\"name\":\"web\"}"]["f:ports"] = json::parse(
          R"({".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})");
  EXPECT_TRUE(diff_object(desired_deployment(), live).empty());
  // A port Git no longer sets is still a difference.
  json desired = desired_deployment();
  desired["spec"]["template"]["spec"]["containers"][0].erase("ports");
  EXPECT_EQ(
      diff_object(desired, live),
      (std::vector<std::string>{"/spec/template/spec/containers/k:{\"name\":\"web\"}/ports/"
                                "k:{\"containerPort\":80,\"protocol\":\"TCP\"}/containerPort"}));
}

TEST(Diff, IgnoreDifferencesByPointerAndManager) {
  json live = live_deployment();
  live["spec"]["replicas"] = 7;
  capstan::apps::IgnoreDifference replicas;
  replicas.group = "apps";
  replicas.kind = "Deployment";
  replicas.json_pointers = {"/spec/replicas", "/spec/does/not/exist"};
  EXPECT_TRUE(diff_object(desired_deployment(), live, {replicas}).empty());
  capstan::apps::IgnoreDifference other_kind = replicas;
  other_kind.kind = "StatefulSet";
  EXPECT_FALSE(diff_object(desired_deployment(), live, {other_kind}).empty());

  // An autoscaler-like manager took over spec.replicas.
  live["metadata"]["managedFields"].push_back(json::parse(R"(
    {"manager": "hpa-controller", "operation": "Update", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:spec": {"f:replicas": {}}}})"));
  capstan::apps::IgnoreDifference by_manager;
  by_manager.kind = "Deployment";
  by_manager.managed_fields_managers = {"hpa-controller"};
  EXPECT_TRUE(diff_object(desired_deployment(), live, {by_manager}).empty());
  // An image change made through kubectl set image (a list item keyed by name).
  live["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:hotfix";
  live["metadata"]["managedFields"].push_back(json::parse(R"(
    {"manager": "kubectl-set", "operation": "Update", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}})"));
  EXPECT_EQ(diff_object(desired_deployment(), live, {by_manager}).size(), 1u);
  by_manager.managed_fields_managers.push_back("kubectl-set");
  EXPECT_TRUE(diff_object(desired_deployment(), live, {by_manager}).empty());
}

TEST(Diff, SecretStringDataComparesAsData) {
  json desired = {{"apiVersion", "v1"},
                  {"kind", "Secret"},
                  {"metadata", {{"name", "s"}}},
                  {"stringData", {{"password", "hunter2"}}}};
  json live = {{"apiVersion", "v1"},
               {"kind", "Secret"},
               {"metadata", {{"name", "s"}}},
               {"data", {{"password", "aHVudGVyMg=="}}},
               {"type", "Opaque"}};
  EXPECT_TRUE(diff_object(desired, live).empty());
  live["data"]["password"] = "b3RoZXI=";
  EXPECT_EQ(diff_object(desired, live), (std::vector<std::string>{"/data/password"}));
}

capstan::apps::Application app_named(const std::string& name) {
  capstan::apps::Application app;
  app.name = name;
  app.destination.namespace_ = "shop";
  return app;
}

TEST(Compare, StatusAndHealthPerResourceAndApplication) {
  auto app = app_named("shop");
  json cm = {
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata",
       {{"name", "settings"},
        {"namespace", "shop"},
        {"annotations", {{"argocd.argoproj.io/tracking-id", "shop:/ConfigMap:shop/settings"}}}}},
      {"data", {{"a", "1"}}}};
  std::vector<capstan::apps::DesiredObject> desired = {{desired_deployment(), "d.yaml", 1},
                                                       {cm, "cm.yaml", 1}};

  // Nothing live yet: OutOfSync and Missing.
  auto c = capstan::apps::compare(app, desired, {});
  EXPECT_EQ(c.sync, SyncStatus::kOutOfSync);
  EXPECT_EQ(c.health, capstan::kube::HealthStatus::kMissing);

  // Both live, the Deployment still rolling out: Synced, Progressing.
  json live_dep = live_deployment();
  live_dep["status"] = {{"observedGeneration", 3},
                        {"replicas", 2},
                        {"updatedReplicas", 1},
                        {"readyReplicas", 1},
                        {"availableReplicas", 1}};
  c = capstan::apps::compare(app, desired, {live_dep, cm});
  EXPECT_EQ(c.sync, SyncStatus::kSynced);
  EXPECT_EQ(c.health, capstan::kube::HealthStatus::kProgressing);
  ASSERT_EQ(c.resources.size(), 2u);
  EXPECT_FALSE(c.resources[1].health) << "ConfigMaps have no health";

  // Rolled out: Healthy.
  live_dep["status"] = {{"observedGeneration", 3},
                        {"replicas", 2},
                        {"updatedReplicas", 2},
                        {"readyReplicas", 2},
                        {"availableReplicas", 2}};
  c = capstan::apps::compare(app, desired, {live_dep, cm});
  EXPECT_EQ(c.health, capstan::kube::HealthStatus::kHealthy);
  EXPECT_EQ(c.to_json()["sync"]["status"], "Synced");

  // A tracked object gone from Git requires pruning; an untracked one is left alone.
  json old = cm;
  old["metadata"]["name"] = "old";
  old["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = "shop:/ConfigMap:shop/old";
  json foreign = cm;
  foreign["metadata"]["name"] = "foreign";
  foreign["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] =
      "other:/ConfigMap:shop/foreign";
  c = capstan::apps::compare(app, desired, {live_dep, cm, old, foreign});
  EXPECT_EQ(c.sync, SyncStatus::kOutOfSync);
  ASSERT_EQ(c.resources.size(), 3u);
  EXPECT_TRUE(c.resources[2].requires_pruning);
  EXPECT_EQ(c.resources[2].key.name, "old");

  // Hooks count for neither sync status nor health.
  json hook = {{"apiVersion", "batch/v1"},
               {"kind", "Job"},
               {"metadata",
                {{"generateName", "migrate-"},
                 {"namespace", "shop"},
                 {"annotations", {{"argocd.argoproj.io/hook", "PreSync"}}}}}};
  desired.push_back({hook, "hook.yaml", 1});
  c = capstan::apps::compare(app, desired, {live_dep, cm});
  EXPECT_EQ(c.sync, SyncStatus::kSynced);
  EXPECT_EQ(c.health, capstan::kube::HealthStatus::kHealthy);
  EXPECT_TRUE(c.resources[2].hook);
}

} // namespace
