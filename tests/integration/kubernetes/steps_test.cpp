// K8sApply, K8sScale, K8sDelete, K8sDryRun, Git manifest stores, and what bad input gives.
#include "plugin_fixture.h"

namespace capstan::plugins::kubernetes::testing {
namespace {

using ::testing::HasSubstr;
using Steps = PluginTest;

void write_job(PluginTest& t, const std::string& image = "migrate:1") {
  t.write("jobs/migrate.yaml", R"(# harness.io/skip-file-for-deploy
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: m
        image: )" + image + "\n");
}

TEST_F(Steps, ApplyRendersTheNamedFilesAndWaitsForJobs) {
  write_job(*this);
  write("extra/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                               "data:\n  replicas: \"{{ .Values.replicas }}\"\n"
                               "  image: <+artifact.image>\n");
  ct::Recorder rec;
  auto r = run("K8sApply", {{"filePaths", {"jobs/migrate.yaml", "extra/settings.yaml"}}}, rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  EXPECT_TRUE(rec.saw("Waiting for Job/default/migrate"));
  EXPECT_TRUE(rec.saw("Steady state reached"));
  auto job = get("batch/v1", "Job", "migrate");
  EXPECT_EQ(job["status"]["succeeded"], 1);
  auto settings = get("v1", "ConfigMap", "settings");
  EXPECT_EQ(settings["data"]["replicas"], "3");         // rendered with the service's values
  EXPECT_EQ(settings["data"]["image"], "myorg/web:v1"); // <+...> resolved in the file
  EXPECT_FALSE(exists("apps/v1", "Deployment", "web")); // only the named files
  EXPECT_TRUE(history().is_null());                     // no release for an apply

  // Applying again changes nothing and succeeds (the step is retry-safe).
  run_ok("K8sApply", {{"filePaths", {"extra/settings.yaml"}}, {"skipSteadyStateCheck", true}});
}

TEST_F(Steps, AStageWithoutAnEnvironmentApplies) {
  RunOptions o;
  o.environment = false;
  run_ok("K8sApply", {{"filePaths", {"manifests/configmap.yaml"}}}, o);
  EXPECT_EQ(get("v1", "ConfigMap", "web-config")["data"]["greeting"], "hello");
}

TEST_F(Steps, ApplyOfAFailingJobFails) {
  write_job(*this, "migrate:fails");
  ct::Recorder rec;
  auto r = run("K8sApply", {{"filePaths", {"jobs"}}}, rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED) << rec.all_text();
  EXPECT_THAT(r.message(), HasSubstr("migrate"));
}

TEST_F(Steps, ADryRunFailureAppliesNothing) {
  write("manifests/bad.yaml", R"(apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  ports:
  - port: 99999
)");
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", json::object(), rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED) << rec.all_text();
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("manifests/bad.yaml:1"));
  EXPECT_THAT(r.message(), HasSubstr("dry run"));
  EXPECT_FALSE(exists("apps/v1", "Deployment", "web"));
  EXPECT_FALSE(exists("v1", "ConfigMap", "web-config-1"));
}

// resourceVersion as a number: the sandbox's write order.
long long rv_of(const json& object) {
  return std::stoll(object["metadata"]["resourceVersion"].get<std::string>());
}

TEST_F(Steps, ConcurrentApplyPutsNamespacesAndDefinitionsFirst) {
  // The objects that depend on the Namespace and the CRD come first in file order, and there
  // are more of them than the apply runs at once.
  std::string dependents;
  for (int i = 0; i < 12; ++i) {
    dependents += "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w-" +
                  std::to_string(i) + "\n  namespace: team\nspec:\n  size: " + std::to_string(i) +
                  "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-" +
                  std::to_string(i) + "\n  namespace: team\ndata:\n  k: v\n---\n";
  }
  write("batch/a-dependents.yaml", dependents);
  write("batch/m-crd.yaml", R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
)");
  write("batch/z-namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n");
  ct::Recorder rec;
  auto r = run("K8sApply", {{"filePaths", {"batch"}}, {"skipSteadyStateCheck", true}}, rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();

  long long ns = rv_of(client_->get({"v1", "Namespace", "", "team"}));
  long long crd = rv_of(client_->get(
      {"apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com"}));
  long long last_config_map = 0;
  for (int i = 0; i < 12; ++i) {
    long long cm = rv_of(get("v1", "ConfigMap", "c-" + std::to_string(i), "team"));
    auto widget = get("example.com/v1", "Widget", "w-" + std::to_string(i), "team");
    EXPECT_EQ(widget["spec"]["size"], i);
    EXPECT_LT(ns, cm);             // the Namespace before what it holds
    EXPECT_LT(crd, rv_of(widget)); // the definition before its custom resources
    last_config_map = std::max(last_config_map, cm);
  }
  EXPECT_LT(last_config_map, crd); // kind by kind: every ConfigMap before the next kind starts
}

TEST_F(Steps, EveryRefusedObjectIsNamedWithItsFile) {
  std::string good;
  for (int i = 0; i < 10; ++i) {
    write("many/good-" + std::to_string(i) + ".yaml",
          "apiVersion: v1\nkind: Service\nmetadata:\n  name: good-" + std::to_string(i) +
              "\nspec:\n  ports:\n  - port: 80\n");
  }
  write("many/bad-port.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad-port\nspec:\n  ports:\n"
        "  - port: 99999\n");
  write("many/bad-protocol.yaml",
        "# a comment first\napiVersion: v1\nkind: Service\nmetadata:\n  name: bad-protocol\n"
        "spec:\n  ports:\n  - port: 80\n    protocol: CARRIER-PIGEON\n");

  // The dry run names both, and nothing is applied.
  ct::Recorder rec;
  auto r = run("K8sApply", {{"filePaths", {"many"}}, {"skipSteadyStateCheck", true}}, rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED) << rec.all_text();
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("2 objects failed the dry run"));
  EXPECT_THAT(r.message(), HasSubstr("many/bad-port.yaml:1: Service/bad-port (dry run)"));
  EXPECT_THAT(r.message(), HasSubstr("many/bad-protocol.yaml:2: Service/bad-protocol (dry run)"));
  EXPECT_THAT(r.message(), HasSubstr("spec.ports[0].port"));
  EXPECT_THAT(r.message(), HasSubstr("spec.ports[0].protocol"));
  EXPECT_FALSE(exists("v1", "Service", "good-0"));

  // Without the dry run the rest of the kind is applied, and the step still names both.
  ct::Recorder rec2;
  auto r2 =
      run("K8sApply",
          {{"filePaths", {"many"}}, {"skipDryRun", true}, {"skipSteadyStateCheck", true}}, rec2);
  ASSERT_EQ(r2.status(), StepResult::STATUS_FAILED) << rec2.all_text();
  EXPECT_THAT(r2.message(), HasSubstr("2 objects could not be applied"));
  EXPECT_THAT(r2.message(), HasSubstr("many/bad-port.yaml:1: Service/bad-port:"));
  EXPECT_THAT(r2.message(), HasSubstr("many/bad-protocol.yaml:2: Service/bad-protocol:"));
  EXPECT_TRUE(rec2.saw("many/bad-port.yaml:1"));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(exists("v1", "Service", "good-" + std::to_string(i)));
  EXPECT_FALSE(exists("v1", "Service", "bad-port"));
}

TEST_F(Steps, ScaleByCountAndPercentage) {
  run_ok("K8sRollingDeploy", json::object());
  run_ok("K8sScale", {{"workload", "Deployment/web"},
                      {"instanceSelection", {{"type", "Count"}, {"spec", {{"count", 5}}}}}});
  auto d = get("apps/v1", "Deployment", "web");
  EXPECT_EQ(d["spec"]["replicas"], 5);
  EXPECT_EQ(d["status"]["readyReplicas"], 5);
  // 50% of the 3 the release declared: 2 (rounded half up).
  ct::Recorder rec;
  auto r = run("K8sScale",
               {{"workload", "default/Deployment/web"},
                {"instanceSelection", {{"type", "Percentage"}, {"spec", {{"percentage", "50"}}}}},
                {"skipSteadyStateCheck", true}},
               rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  EXPECT_TRUE(rec.saw("50% of 3 is 2"));
  EXPECT_EQ(get("apps/v1", "Deployment", "web")["spec"]["replicas"], 2);

  ct::Recorder bad;
  r = run(
      "K8sScale",
      {{"workload", "web"}, {"instanceSelection", {{"type", "Count"}, {"spec", {{"count", 1}}}}}},
      bad);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("is not [namespace/]Kind/Name"));
  ct::Recorder missing;
  r = run("K8sScale",
          {{"workload", "Deployment/nope"},
           {"instanceSelection", {{"type", "Count"}, {"spec", {{"count", 1}}}}}},
          missing);
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("not found"));
}

TEST_F(Steps, DeleteByNameByManifestAndByRelease) {
  run_ok("K8sRollingDeploy", json::object());
  ct::Recorder rec;
  auto r = run("K8sDelete",
               {{"deleteResources",
                 {{"type", "ResourceName"},
                  {"spec", {{"resourceNames", {"Service/web", "ConfigMap/not-there"}}}}}}},
               rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  EXPECT_FALSE(exists("v1", "Service", "web"));
  EXPECT_TRUE(rec.saw("ConfigMap/default/not-there was not found"));

  write_job(*this);
  run_ok("K8sApply", {{"filePaths", {"jobs/migrate.yaml"}}});
  run_ok("K8sDelete", {{"deleteResources",
                        {{"type", "ManifestPath"}, {"spec", {{"manifestPaths", {"jobs"}}}}}}});
  EXPECT_FALSE(exists("batch/v1", "Job", "migrate"));

  run_ok("K8sDelete", {{"deleteResources", {{"type", "ReleaseName"}, {"spec", json::object()}}}});
  EXPECT_TRUE(ct::wait_until([&] { return !exists("apps/v1", "Deployment", "web"); }));
  EXPECT_FALSE(exists("v1", "ConfigMap", "web-config-1"));
  EXPECT_FALSE(exists("v1", "ConfigMap", "release-web"));
  EXPECT_FALSE(exists("v1", "Secret", "release-web.manifests.v1"));
}

TEST_F(Steps, DeleteAReleaseWithItsNamespace) {
  client_->apply({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "team"}}}});
  namespace_ = "team";
  run_ok("K8sRollingDeploy", json::object());
  EXPECT_TRUE(exists("apps/v1", "Deployment", "web", "team"));
  run_ok("K8sDelete",
         {{"deleteResources", {{"type", "ReleaseName"}, {"spec", {{"deleteNamespace", true}}}}}});
  EXPECT_TRUE(ct::wait_until([&] { return !exists("v1", "Namespace", "team", ""); }));
}

TEST_F(Steps, DryRunOutputsTheManifestsAndChangesNothing) {
  write("manifests/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n"
                                 "stringData:\n  password: hunter2\n");
  ct::Recorder rec;
  auto r = run("K8sDryRun", json::object(), rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  const std::string& out = rec.outputs["manifestDryRun"];
  EXPECT_THAT(out, HasSubstr("kind: Deployment"));
  EXPECT_THAT(out, HasSubstr("image: myorg/web:v1"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("hunter2")));
  EXPECT_FALSE(rec.saw("hunter2"));
  EXPECT_FALSE(exists("apps/v1", "Deployment", "web"));
  EXPECT_FALSE(exists("v1", "Secret", "creds"));
}

TEST_F(Steps, InvalidManifestYamlNamesFileAndLine) {
  write("manifests/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n");
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", json::object(), rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("manifests/broken.yaml:"));
  EXPECT_FALSE(exists("apps/v1", "Deployment", "web"));
}

TEST_F(Steps, TemplateErrorsNameFileLineAndColumn) {
  write("manifests/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        "  name: web-config\ndata:\n  x: {{ .Values.greeting | nope }}\n");
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", json::object(), rec);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("manifests/configmap.yaml:6:"));
  EXPECT_THAT(r.message(), HasSubstr("function \"nope\" not defined"));
}

TEST_F(Steps, AKindTheClusterDoesNotServeSaysWhatItServes) {
  write("manifests/monitor.yaml", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
                                  "metadata:\n  name: web\nspec: {}\n");
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", json::object(), rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("manifests/monitor.yaml:1"));
  EXPECT_THAT(r.message(), HasSubstr("does not serve apiVersion monitoring.coreos.com/v1"));
  EXPECT_THAT(r.message(), HasSubstr("apps/v1"));
}

TEST_F(Steps, AnUnresolvableReferenceInAFileNamesIt) {
  write("values.yaml", "replicas: 3\ngreeting: <+pipeline.variables.missing>\n"
                       "image: <+artifact.image>\n");
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", json::object(), rec);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("values.yaml:2:11"));
  EXPECT_THAT(r.message(), HasSubstr("<+pipeline.variables.missing> does not resolve"));
}

TEST_F(Steps, AWrongTokenIsAnAuthenticationError) {
  auto kc = ct::read_file(sandbox_->kubeconfig());
  auto token = sandbox_->token();
  kc.replace(kc.find(token), token.size(), "wrong-token");
  connector_["credential"] = {{"type", "Kubeconfig"}, {"kubeconfig", kc}};
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", json::object(), rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_AUTHENTICATION) << r.message();
  EXPECT_THAT(r.message() + rec.all_text(), ::testing::Not(HasSubstr("wrong-token")));
}

TEST_F(Steps, AnUnreachableClusterIsAConnectivityError) {
  connector_["credential"] = {{"type", "ManualConfig"},
                              {"masterUrl", "https://127.0.0.1:1"},
                              {"skipTlsVerify", true},
                              {"auth", {{"type", "ServiceAccount"}, {"token", "t0ken-value"}}}};
  ct::Recorder rec;
  auto r = run("K8sApply", {{"filePaths", {"manifests/service.yaml"}}}, rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_CONNECTIVITY) << r.message();
  EXPECT_THAT(r.message(), HasSubstr("cannot connect to https://127.0.0.1:1"));
  EXPECT_EQ(std::count(rec.masks.begin(), rec.masks.end(), "t0ken-value"), 1);
}

TEST_F(Steps, AMissingKubeconfigIsAnAuthenticationError) {
  connector_["credential"] = {{"type", "Kubeconfig"},
                              {"kubeconfigPath", (dir_ / "nowhere").string()}};
  ct::Recorder rec;
  auto r = run("K8sRollingDeploy", json::object(), rec);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_AUTHENTICATION);
  EXPECT_THAT(r.message(), HasSubstr("nowhere"));
}

TEST_F(Steps, AMissingNamespaceIsNamed) {
  namespace_ = "does-not-exist";
  ct::Recorder rec;
  auto r = run("K8sApply", {{"filePaths", {"manifests/service.yaml"}}}, rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("namespace does-not-exist does not exist"));
}

TEST_F(Steps, SpecsAreCheckedAgainstTheSchema) {
  ct::Recorder rec;
  auto r = run("K8sCanaryDeploy", {{"instanceSelection", {{"type", "Fraction"}}}}, rec);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("/instanceSelection"));
  ct::Recorder typo;
  r = run("K8sRollingDeploy", {{"skipDryRn", true}}, typo);
  EXPECT_THAT(r.message(), HasSubstr("skipDryRn"));
}

TEST_F(Steps, CancellingAWaitEndsTheStep) {
  ct::Recorder rec;
  std::thread canceller([&] {
    ct::wait_until([&] { return rec.saw("== Wait for steady state =="); });
    rec.cancel = true;
  });
  auto r = run("K8sRollingDeploy", json::object(), rec, {"exec-1", false, 60000, "crashloop"});
  canceller.join();
  EXPECT_EQ(r.status(), StepResult::STATUS_CANCELLED) << r.message() << rec.all_text();
  EXPECT_EQ(history()["releases"][0]["status"], "Failed");
}

TEST_F(Steps, ManifestsFromAGitStore) {
  auto repo = dir_ / "repo";
  auto sh = [&](const std::string& cmd) {
    auto r = ct::run({"sh", "-c", cmd},
                     {{"GIT_AUTHOR_NAME", "t"},
                      {"GIT_AUTHOR_EMAIL", "t@t"},
                      {"GIT_COMMITTER_NAME", "t"},
                      {"GIT_COMMITTER_EMAIL", "t@t"}},
                     std::chrono::seconds(30), repo.string());
    ASSERT_TRUE(r.status.success()) << cmd << "\n" << r.err;
  };
  std::filesystem::create_directories(repo);
  std::filesystem::copy(dir_ / "app", repo, std::filesystem::copy_options::recursive);
  sh("git init -q -b main . && git add -A && git commit -qm first");
  service_["serviceDefinition"]["spec"]["manifests"][0]["manifest"]["spec"]["store"] = {
      {"type", "Git"},
      {"spec",
       {{"connectorRef", "repo"},
        {"gitFetchType", "Branch"},
        {"branch", "main"},
        {"paths", {"manifests"}}}}};
  service_.erase("baseDir");
  json ctx_connector = {{"identifier", "repo"},
                        {"type", "Git"},
                        {"url", "file://" + repo.string()},
                        {"auth", {{"type", "Anonymous"}}}};
  // The Git connector travels in the same connectors map as the cluster's.
  auto base = connector_;
  ct::Recorder rec;
  plugin::v1::StepRequest req;
  req.set_execution_id("exec-git");
  req.set_step_type("K8sRollingDeploy");
  req.set_spec_json("{}");
  req.set_timeout_ms(60000);
  auto work = dir_ / "work-git";
  std::filesystem::create_directories(work);
  req.set_work_dir(work.string());
  json c = context({"exec-git"});
  c["connectors"]["repo"] = ctx_connector;
  req.set_context_json(c.dump());
  auto r = host_.execute(req, rec.callbacks());
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  EXPECT_TRUE(rec.saw("Fetching service web manifest app from file://"));
  EXPECT_EQ(get("apps/v1", "Deployment", "web")["spec"]["replicas"], 3);

  // A commit pinned by id.
  std::string head = ct::run({"git", "-C", repo.string(), "rev-parse", "HEAD"}).out;
  head.pop_back();
  sh("sed -i 's/replicas: 3/replicas: 1/' values.yaml && git commit -qam second");
  c["service"]["serviceDefinition"]["spec"]["manifests"][0]["manifest"]["spec"]["store"]["spec"] = {
      {"connectorRef", "repo"},
      {"gitFetchType", "Commit"},
      {"commitId", head},
      {"paths", {"manifests"}}};
  c["pipeline"]["executionId"] = "exec-git-2";
  req.set_context_json(c.dump());
  ct::Recorder rec2;
  r = host_.execute(req, rec2.callbacks());
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec2.all_text();
  EXPECT_EQ(get("apps/v1", "Deployment", "web")["spec"]["replicas"], 3);
  (void)base;
}

} // namespace
} // namespace capstan::plugins::kubernetes::testing
