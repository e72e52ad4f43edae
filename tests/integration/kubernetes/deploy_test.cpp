// Rolling, canary and blue-green deployments and their rollbacks, through the real plugin
// against capstan-sandbox.
#include "plugin_fixture.h"

namespace capstan::plugins::kubernetes::testing {
namespace {

using ::testing::HasSubstr;

std::string image_of(const json& deployment) {
  return deployment["spec"]["template"]["spec"]["containers"][0]["image"];
}
std::string config_ref(const json& deployment) {
  return deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]
                   ["name"];
}

using Deployments = PluginTest;

TEST_F(Deployments, RollingDeployRecordsNumberedReleasesWithVersionedConfigMaps) {
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", {{"skipDryRun", false}}, rec, {"exec-1"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  EXPECT_EQ(rec.outputs["releaseNumber"], "1");
  EXPECT_EQ(rec.outputs["releaseName"], "release-web");
  EXPECT_TRUE(rec.saw("== Dry run =="));
  EXPECT_TRUE(rec.saw("Versioned ConfigMap web-config as web-config-1"));
  EXPECT_TRUE(rec.saw("deployment \"web\" successfully rolled out"));
  EXPECT_TRUE(rec.saw("Event Deployment/web: Normal ScalingReplicaSet"));
  auto d = get("apps/v1", "Deployment", "web");
  EXPECT_EQ(image_of(d), "myorg/web:v1");
  EXPECT_EQ(config_ref(d), "web-config-1");
  EXPECT_EQ(d["spec"]["template"]["metadata"]["labels"]["harness.io/release-name"], "release-web");
  EXPECT_EQ(get("v1", "ConfigMap", "web-config-1")["data"]["greeting"], "hello");

  write("values.yaml", "replicas: 3\ngreeting: hi again\nimage: <+artifact.image>\n");
  ct::Recorder rec2;
  r = run("K8sRollingDeploy", json::object(), rec2, {"exec-2", false, 60000, "v2"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec2.all_text();
  EXPECT_EQ(rec2.outputs["releaseNumber"], "2");
  d = get("apps/v1", "Deployment", "web");
  EXPECT_EQ(image_of(d), "myorg/web:v2");
  EXPECT_EQ(config_ref(d), "web-config-2");
  EXPECT_EQ(get("v1", "ConfigMap", "web-config-2")["data"]["greeting"], "hi again");
  EXPECT_TRUE(exists("v1", "ConfigMap", "web-config-1")); // kept for a rollback to release 1

  auto h = history();
  ASSERT_EQ(h["releases"].size(), 2u) << h.dump();
  EXPECT_EQ(h["releases"][0]["number"], 2);
  EXPECT_EQ(h["releases"][0]["status"], "Succeeded");
  EXPECT_EQ(h["releases"][0]["managedWorkload"]["name"], "web");
  EXPECT_EQ(h["releases"][0]["managedWorkloadRevision"], "2");
  EXPECT_EQ(h["releases"][1]["number"], 1);

  // A third release drops the first from the history, and its versioned ConfigMap with it.
  run_ok("K8sRollingDeploy", json::object(), {"exec-3", false, 60000, "v3"});
  EXPECT_EQ(history()["releases"].size(), 2u);
  EXPECT_FALSE(exists("v1", "ConfigMap", "web-config-1"));
  EXPECT_TRUE(exists("v1", "ConfigMap", "web-config-2"));
  EXPECT_FALSE(exists("v1", "Secret", "release-web.manifests.v1"));
}

TEST_F(Deployments, SkipVersioningAnnotationKeepsTheName) {
  write("manifests/configmap.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  annotations: {harness.io/skip-versioning: "true"}
data:
  greeting: {{ .Values.greeting }}
)");
  run_ok("K8sRollingDeploy", json::object());
  EXPECT_TRUE(exists("v1", "ConfigMap", "web-config"));
  EXPECT_EQ(config_ref(get("apps/v1", "Deployment", "web")), "web-config");
}

TEST_F(Deployments, AFailingRolloutTimesOutWithThePodsReasonsAndRollsBack) {
  run_ok("K8sRollingDeploy", json::object(), {"exec-1", false, 60000, "v1"});
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", json::object(), rec, {"exec-2", false, 5000, "crashloop"});
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED) << rec.all_text();
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_TIMEOUT) << r.message();
  EXPECT_THAT(r.message(), HasSubstr("CrashLoopBackOff"));
  EXPECT_TRUE(rec.saw("CrashLoopBackOff")) << rec.all_text();
  EXPECT_EQ(history()["releases"][0]["status"], "Failed");

  // The stage's rollback (same execution) restores release 1.
  ct::Recorder rb;
  r = run("K8sRollingRollback", json::object(), rb, {"exec-2", true, 60000, "crashloop"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rb.all_text();
  EXPECT_TRUE(rb.saw("Rolling release-web back from release 2 to release 1"));
  EXPECT_EQ(rb.outputs["releaseNumber"], "1");
  auto d = get("apps/v1", "Deployment", "web");
  EXPECT_EQ(image_of(d), "myorg/web:v1");
  EXPECT_EQ(config_ref(d), "web-config-1");
  EXPECT_EQ(d["status"]["readyReplicas"], 3); // the previous version serves again
  auto h = history();
  EXPECT_EQ(h["releases"][0]["status"], "Failed");
  EXPECT_EQ(h["releases"][1]["status"], "Succeeded");

  // The next deployment drops the failed release and builds on release 1.
  ct::Recorder next;
  r = run("K8sRollingDeploy", json::object(), next, {"exec-3", false, 60000, "v3"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << next.all_text();
  EXPECT_EQ(next.outputs["releaseNumber"], "3");
}

// A Deployment past its progressDeadlineSeconds fails the step before the step's timeout, as a
// Timeout (a steady state not reached in time), naming the workload and the condition.
TEST_F(Deployments, AProgressDeadlineExceededFailsAsATimeoutNamingTheCondition) {
  const auto file = dir_ / "app" / "manifests" / "deployment.yaml";
  std::string manifest = ct::read_file(file);
  const std::string replicas = "  replicas: {{ .Values.replicas }}\n";
  ASSERT_NE(manifest.find(replicas), std::string::npos) << manifest;
  manifest.replace(manifest.find(replicas), replicas.size(),
                   "  replicas: 1\n  progressDeadlineSeconds: 3\n");
  ct::write_file(file, manifest);
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", json::object(), rec, {"exec-1", false, 120000, "pullfail"});
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED) << rec.all_text();
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_TIMEOUT) << r.message();
  EXPECT_THAT(r.message(), HasSubstr("Deployment/default/web: deployment \"web\" exceeded its "
                                     "progress deadline (ProgressDeadlineExceeded: ReplicaSet "
                                     "\"web-"));
  EXPECT_THAT(r.message(), HasSubstr("has timed out progressing."));
  EXPECT_THAT(r.message(),
              ::testing::AnyOf(HasSubstr("ErrImagePull"), HasSubstr("ImagePullBackOff")));
  EXPECT_EQ(history()["releases"][0]["status"], "Failed");
}

TEST_F(Deployments, RollbackAfterALaterStepFailedRestoresThePreviousRelease) {
  run_ok("K8sRollingDeploy", json::object(), {"exec-1", false, 60000, "v1"});
  run_ok("K8sRollingDeploy", json::object(), {"exec-2", false, 60000, "v2"});
  run_ok("K8sRollingRollback", json::object(), {"exec-2", true, 60000, "v2"});
  EXPECT_EQ(image_of(get("apps/v1", "Deployment", "web")), "myorg/web:v1");
}

TEST_F(Deployments, RollbackOfAFirstReleaseOrOfNothingIsSkipped) {
  ct::Recorder rec;
  auto r = run("K8sRollingRollback", json::object(), rec, {"exec-9", true});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(rec.saw("deployed no release of release-web; nothing to roll back"));
  run_ok("K8sRollingDeploy", json::object(), {"exec-1"});
  ct::Recorder first;
  r = run("K8sRollingRollback", json::object(), first, {"exec-1", true});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(first.saw("skipping rollback"));
  EXPECT_EQ(first.outputs["rollbackStatus"], "Skipped");
}

TEST_F(Deployments, PruningDeletesWhatTheNewReleaseNoLongerHas) {
  write("manifests/extra.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
  annotations: {harness.io/skip-versioning: "true"}
data: {a: b}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: keeper
  annotations: {harness.io/skip-versioning: "true", harness.io/skipPruning: "true"}
data: {a: b}
)");
  run_ok("K8sRollingDeploy", {{"pruningEnabled", true}}, {"exec-1"});
  ASSERT_TRUE(exists("v1", "ConfigMap", "extra"));
  std::filesystem::remove(dir_ / "app/manifests/extra.yaml");
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", {{"pruningEnabled", true}}, rec, {"exec-2"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << rec.all_text();
  EXPECT_TRUE(rec.saw("Deleted ConfigMap/default/extra")) << rec.all_text();
  EXPECT_FALSE(exists("v1", "ConfigMap", "extra"));
  EXPECT_TRUE(exists("v1", "ConfigMap", "keeper"));
  EXPECT_TRUE(exists("apps/v1", "Deployment", "web"));
}

TEST_F(Deployments, CanaryThenRollingThenCanaryDelete) {
  ct::Recorder canary;
  json spec = {{"instanceSelection", {{"type", "Percentage"}, {"spec", {{"percentage", 50}}}}}};
  auto r = run("K8sCanaryDeploy", spec, canary, {"exec-1"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << canary.all_text();
  EXPECT_EQ(canary.outputs["canaryWorkload"], "Deployment/web-canary");
  EXPECT_EQ(canary.outputs["targetInstances"], "2"); // 50% of 3, rounded up
  EXPECT_EQ(canary.outputs["releaseNumber"], "1");
  auto c = get("apps/v1", "Deployment", "web-canary");
  EXPECT_EQ(c["spec"]["replicas"], 2);
  EXPECT_EQ(c["spec"]["template"]["metadata"]["labels"]["harness.io/track"], "canary");
  EXPECT_EQ(c["spec"]["selector"]["matchLabels"]["harness.io/track"], "canary");
  EXPECT_EQ(c["status"]["readyReplicas"], 2);
  EXPECT_FALSE(exists("apps/v1", "Deployment", "web"));

  ct::Recorder primary;
  r = run("K8sRollingDeploy", json::object(), primary, {"exec-1"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << primary.all_text();
  EXPECT_EQ(primary.outputs["releaseNumber"], "1"); // the canary's release, completed
  auto d = get("apps/v1", "Deployment", "web");
  EXPECT_EQ(d["spec"]["template"]["metadata"]["labels"]["harness.io/track"], "stable");
  EXPECT_EQ(d["spec"]["selector"]["matchLabels"]["harness.io/track"], "stable");
  EXPECT_EQ(config_ref(d), "web-config-1");

  ct::Recorder del;
  r = run("K8sCanaryDelete", json::object(), del, {"exec-1"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(del.saw("Deleted Deployment/default/web-canary"));
  EXPECT_TRUE(ct::wait_until([&] { return !exists("apps/v1", "Deployment", "web-canary"); }));
  EXPECT_EQ(history()["releases"][0]["status"], "Succeeded");

  // The next canary: a count, rounded as given; the stable Deployment keeps its selector.
  json two = {{"instanceSelection", {{"type", "Count"}, {"spec", {{"count", "1"}}}}}};
  ct::Recorder next;
  r = run("K8sCanaryDeploy", two, next, {"exec-2", false, 60000, "v2"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << next.all_text();
  EXPECT_EQ(next.outputs["releaseNumber"], "2");
  EXPECT_EQ(get("apps/v1", "Deployment", "web-canary")["spec"]["replicas"], 1);
  run_ok("K8sRollingDeploy", json::object(), {"exec-2", false, 60000, "v2"});
  run_ok("K8sCanaryDelete", json::object(), {"exec-2", false, 60000, "v2"});
  EXPECT_EQ(image_of(get("apps/v1", "Deployment", "web")), "myorg/web:v2");
}

TEST_F(Deployments, CanaryFailureIsCleanedUpByTheRollbackSteps) {
  run_ok("K8sRollingDeploy", json::object(), {"exec-1"});
  json spec = {{"instanceSelection", {{"type", "Count"}, {"spec", {{"count", 1}}}}}};
  ct::Recorder rec;
  auto r = run("K8sCanaryDeploy", spec, rec, {"exec-2", false, 4000, "pullfail"});
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_THAT(r.message(),
              ::testing::AnyOf(HasSubstr("ErrImagePull"), HasSubstr("ImagePullBackOff")));
  run_ok("K8sCanaryDelete", json::object(), {"exec-2", true, 60000, "pullfail"});
  run_ok("K8sRollingRollback", json::object(), {"exec-2", true, 60000, "pullfail"});
  EXPECT_TRUE(ct::wait_until([&] { return !exists("apps/v1", "Deployment", "web-canary"); }));
  EXPECT_EQ(image_of(get("apps/v1", "Deployment", "web")), "myorg/web:v1");
}

std::string color(const json& service) {
  return service["spec"]["selector"].value("harness.io/color", "");
}

TEST_F(Deployments, BlueGreenTwiceAlternatesColoursSwapsAndRollsBack) {
  // First: blue, and both Services route to it.
  ct::Recorder first;
  auto r = run("K8sBlueGreenDeploy", json::object(), first, {"exec-1"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << first.all_text();
  EXPECT_EQ(first.outputs["stageColor"], "blue");
  EXPECT_EQ(first.outputs["primaryServiceName"], "web");
  EXPECT_EQ(first.outputs["stageServiceName"], "web-stage");
  EXPECT_TRUE(exists("apps/v1", "Deployment", "web-blue"));
  EXPECT_EQ(color(get("v1", "Service", "web")), "blue");
  EXPECT_EQ(color(get("v1", "Service", "web-stage")), "blue");
  run_ok("K8sBGSwapServices", json::object(), {"exec-1"});
  EXPECT_EQ(color(get("v1", "Service", "web")), "blue");

  // Second: green behind the stage Service; the swap sends live traffic to it.
  ct::Recorder second;
  r = run("K8sBlueGreenDeploy", json::object(), second, {"exec-2", false, 60000, "v2"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << second.all_text();
  EXPECT_EQ(second.outputs["stageColor"], "green");
  EXPECT_EQ(second.outputs["primaryColor"], "blue");
  auto green = get("apps/v1", "Deployment", "web-green");
  EXPECT_EQ(image_of(green), "myorg/web:v2");
  EXPECT_EQ(green["spec"]["template"]["metadata"]["labels"]["harness.io/color"], "green");
  EXPECT_EQ(color(get("v1", "Service", "web")), "blue");
  EXPECT_EQ(color(get("v1", "Service", "web-stage")), "green");
  run_ok("K8sBGSwapServices", json::object(), {"exec-2", false, 60000, "v2"});
  EXPECT_EQ(color(get("v1", "Service", "web")), "green");
  EXPECT_EQ(color(get("v1", "Service", "web-stage")), "blue");
  run_ok("K8sBlueGreenStageScaleDown", json::object(), {"exec-2", false, 60000, "v2"});
  EXPECT_EQ(get("apps/v1", "Deployment", "web-blue")["spec"]["replicas"], 0);
  EXPECT_EQ(get("apps/v1", "Deployment", "web-green")["spec"]["replicas"], 3);

  // Third: blue again; a failure after the swap swaps back.
  run_ok("K8sBlueGreenDeploy", json::object(), {"exec-3", false, 60000, "v3"});
  EXPECT_EQ(get("apps/v1", "Deployment", "web-blue")["spec"]["replicas"], 3);
  EXPECT_EQ(image_of(get("apps/v1", "Deployment", "web-blue")), "myorg/web:v3");
  run_ok("K8sBGSwapServices", json::object(), {"exec-3", false, 60000, "v3"});
  EXPECT_EQ(color(get("v1", "Service", "web")), "blue");
  ct::Recorder rb;
  r = run("K8sBGSwapServices", json::object(), rb, {"exec-3", true, 60000, "v3"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rb.all_text();
  EXPECT_EQ(color(get("v1", "Service", "web")), "green");
  EXPECT_EQ(color(get("v1", "Service", "web-stage")), "blue");
  EXPECT_EQ(history()["releases"][0]["status"], "Failed");
}

TEST_F(Deployments, BlueGreenFailureBeforeTheSwapLeavesLiveTrafficAlone) {
  run_ok("K8sBlueGreenDeploy", json::object(), {"exec-1"});
  ct::Recorder rec;
  auto r = run("K8sBlueGreenDeploy", json::object(), rec, {"exec-2", false, 4000, "crashloop"});
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  ct::Recorder rb;
  r = run("K8sBGSwapServices", json::object(), rb, {"exec-2", true, 60000, "crashloop"});
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(rb.saw("nothing to swap back"));
  EXPECT_EQ(color(get("v1", "Service", "web")), "blue");
  EXPECT_EQ(image_of(get("apps/v1", "Deployment", "web-blue")), "myorg/web:v1");
}

TEST_F(Deployments, BlueGreenNeedsOneWorkloadAndAService) {
  write("manifests/other.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: other}
spec:
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: o, image: other:1}]}
)");
  ct::Recorder rec;
  auto r = run("K8sBlueGreenDeploy", json::object(), rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("Found 2 workloads in manifest"));
  EXPECT_THAT(r.message(), HasSubstr("harness.io/direct-apply"));
}

} // namespace
} // namespace capstan::plugins::kubernetes::testing
