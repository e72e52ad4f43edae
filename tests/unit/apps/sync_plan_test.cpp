// Sync planning in Argo CD's order: phases, waves, kinds, names; hooks; prunes.
#include <gtest/gtest.h>

#include <capstan/apps/render.h>
#include <capstan/apps/sync_plan.h>
#include <capstan/testing/testing.h>

namespace {

using capstan::apps::DesiredObject;
using capstan::apps::SyncPhase;
using capstan::apps::TaskAction;
using nlohmann::json;

capstan::apps::Application app_named(const std::string& name) {
  capstan::apps::Application app;
  app.name = name;
  app.destination.namespace_ = "demo";
  return app;
}

std::vector<std::string> order(const capstan::apps::SyncPlan& plan) {
  std::vector<std::string> out;
  for (const auto& t : plan.tasks) {
    out.push_back(std::string(to_string(t.phase)) + ":" + std::to_string(t.wave) + ":" +
                  (t.action == TaskAction::kPrune ? "prune " : "") + t.key.kind + "/" + t.key.name);
  }
  return out;
}

json object(const std::string& api_version, const std::string& kind, const std::string& name,
            json annotations = json::object(), const std::string& ns = "") {
  json o = {{"apiVersion", api_version}, {"kind", kind}, {"metadata", {{"name", name}}}};
  if (!annotations.empty()) o["metadata"]["annotations"] = annotations;
  if (!ns.empty()) o["metadata"]["namespace"] = ns;
  return o;
}

capstan::apps::SyncPlan plan(const std::vector<json>& objects, const std::vector<json>& live = {},
                             capstan::apps::PlanOptions options = {}) {
  std::vector<DesiredObject> desired;
  for (const auto& o : objects) desired.push_back({o, "m.yaml", 1});
  auto app = app_named("demo");
  desired = capstan::apps::prepare_desired(app, desired);
  auto comparison = capstan::apps::compare(app, desired, live);
  if (options.revision.empty()) options.revision = "0123456789abcdef";
  return capstan::apps::plan_sync(desired, comparison, live, options);
}

TEST(SyncPlan, CorpusSyncWavesInArgoOrder) {
  auto rendered = capstan::apps::render_source(
      capstan::testing::source_dir() / "tests/fixtures/apps/argocd-example-apps", [] {
        capstan::apps::Source s;
        s.path = "sync-waves";
        return s;
      }());
  std::vector<json> objects;
  for (const auto& r : rendered) objects.push_back(r.object);
  auto p = plan(objects);
  EXPECT_EQ(order(p), (std::vector<std::string>{
                          "PreSync:0:Job/upgrade-sql-schema0123456-presync",
                          "Sync:0:Service/backend",
                          "Sync:0:ReplicaSet/backend",
                          "Sync:1:Job/maint-page-up",
                          "Sync:2:Service/frontend",
                          "Sync:2:ReplicaSet/frontend",
                          "Sync:3:Job/maint-page-down",
                      }));
  EXPECT_TRUE(p.tasks[0].hook);
  EXPECT_TRUE(p.tasks[0].has_delete_policy("BeforeHookCreation")) << "the default policy";
  EXPECT_FALSE(p.tasks[0].object["metadata"].contains("generateName"));
  EXPECT_EQ(p.steps().size(), 5u);
}

TEST(SyncPlan, KindsNamespacesAndCrdsFirst) {
  json crd = object("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com");
  crd["spec"] = {{"group", "example.com"}, {"names", {{"kind", "Widget"}}}};
  auto p = plan({object("apps/v1", "Deployment", "b"), object("example.com/v1", "Widget", "w"),
                 object("v1", "ConfigMap", "z"), object("apps/v1", "Deployment", "a"), crd,
                 object("v1", "Namespace", "demo"), object("v1", "Service", "svc"),
                 object("v1", "Secret", "s"), object("batch/v1", "Job", "j")});
  EXPECT_EQ(order(p),
            (std::vector<std::string>{
                "Sync:0:Namespace/demo", "Sync:0:Secret/s", "Sync:0:ConfigMap/z",
                "Sync:0:CustomResourceDefinition/widgets.example.com", "Sync:0:Service/svc",
                "Sync:0:Deployment/a", "Sync:0:Deployment/b", "Sync:0:Job/j", "Sync:0:Widget/w"}));
}

TEST(SyncPlan, NamespaceMovesBeforeAnEarlierWaveThatUsesIt) {
  auto p =
      plan({object("v1", "Namespace", "late", {{"argocd.argoproj.io/sync-wave", "5"}}),
            object("v1", "ConfigMap", "early", {{"argocd.argoproj.io/sync-wave", "-1"}}, "late")});
  EXPECT_EQ(order(p),
            (std::vector<std::string>{"Sync:-1:Namespace/late", "Sync:-1:ConfigMap/early"}));
}

TEST(SyncPlan, HooksInEveryPhaseAndSkip) {
  auto p =
      plan({object("batch/v1", "Job", "post",
                   {{"argocd.argoproj.io/hook", "PostSync"},
                    {"argocd.argoproj.io/hook-delete-policy", "HookSucceeded"}}),
            object("batch/v1", "Job", "fail", {{"argocd.argoproj.io/hook", "SyncFail"}}),
            object("v1", "ConfigMap", "skipped", {{"argocd.argoproj.io/hook", "Skip"}}),
            object("batch/v1", "Job", "both", {{"argocd.argoproj.io/hook", "PreSync,PostSync"}}),
            object("v1", "ConfigMap", "cm")});
  EXPECT_EQ(order(p), (std::vector<std::string>{"PreSync:0:Job/both", "Sync:0:ConfigMap/cm",
                                                "PostSync:0:Job/both", "PostSync:0:Job/post"}));
  ASSERT_EQ(p.sync_fail.size(), 1u);
  EXPECT_EQ(p.sync_fail[0].key.name, "fail");
  EXPECT_TRUE(p.tasks[3].has_delete_policy("HookSucceeded"));
  EXPECT_FALSE(p.tasks[3].has_delete_policy("BeforeHookCreation"));
}

TEST(SyncPlan, PrunesTrackedObjectsOnlyWhenAsked) {
  json gone = object("v1", "ConfigMap", "gone",
                     {{"argocd.argoproj.io/tracking-id", "demo:/ConfigMap:demo/gone"}}, "demo");
  json gone_dep =
      object("apps/v1", "Deployment", "old",
             {{"argocd.argoproj.io/tracking-id", "demo:apps/Deployment:demo/old"}}, "demo");
  json keep = object("v1", "ConfigMap", "keep",
                     {{"argocd.argoproj.io/tracking-id", "demo:/ConfigMap:demo/keep"},
                      {"argocd.argoproj.io/sync-options", "Prune=false"}},
                     "demo");
  std::vector<json> desired = {
      object("v1", "ConfigMap", "cm", {{"argocd.argoproj.io/sync-wave", "2"}})};
  EXPECT_EQ(order(plan(desired, {gone, gone_dep, keep})),
            (std::vector<std::string>{"Sync:2:ConfigMap/cm"}));
  capstan::apps::PlanOptions prune;
  prune.prune = true;
  EXPECT_EQ(order(plan(desired, {gone, gone_dep, keep}, prune)),
            (std::vector<std::string>{"Sync:0:prune Deployment/old", "Sync:0:prune ConfigMap/gone",
                                      "Sync:2:ConfigMap/cm"}));
  prune.prune_last = true;
  EXPECT_EQ(order(plan(desired, {gone, gone_dep, keep}, prune)),
            (std::vector<std::string>{"Sync:2:ConfigMap/cm", "Sync:3:prune Deployment/old",
                                      "Sync:3:prune ConfigMap/gone"}));
}

TEST(SyncPlan, ApplyOutOfSyncOnlySkipsSyncedObjects) {
  json cm = object("v1", "ConfigMap", "same", {}, "demo");
  json live = cm;
  live["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = "demo:/ConfigMap:demo/same";
  capstan::apps::PlanOptions options;
  options.apply_out_of_sync_only = true;
  EXPECT_EQ(order(plan({cm, object("v1", "ConfigMap", "new")}, {live}, options)),
            (std::vector<std::string>{"Sync:0:ConfigMap/new"}));
  EXPECT_EQ(order(plan({cm, object("v1", "ConfigMap", "new")}, {live})).size(), 2u);
}

TEST(SyncPlan, BadAnnotationsAreComparisonErrors) {
  EXPECT_THROW(plan({object("v1", "ConfigMap", "c", {{"argocd.argoproj.io/sync-wave", "soon"}})}),
               capstan::apps::ComparisonError);
  EXPECT_THROW(plan({object("batch/v1", "Job", "j", {{"argocd.argoproj.io/hook", "Later"}})}),
               capstan::apps::ComparisonError);
}

} // namespace
