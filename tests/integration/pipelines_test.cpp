// Pipelines as Harness users write them, run by a real coordinator and delegates (the bundled
// shell plugin) on loopback: retries, rollback, approvals, parallel step groups, a coordinator
// killed while an approval waits, secrets masked, the deployment queue, execution inputs,
// manual interventions, conditions, references and the audit trail.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "stack.h"

namespace capstan::testing {
namespace {

using nlohmann::json;

// A ShellScript step as YAML, indented for a steps list at `indent` spaces.
std::string shell(const std::string& id, const std::string& script, int indent,
                  const std::string& extra = "") {
  std::string pad(static_cast<std::size_t>(indent), ' ');
  std::string out = pad + "- step:\n" + pad + "    type: ShellScript\n" + pad +
                    "    identifier: " + id + "\n" + pad + "    name: " + id + "\n" + pad +
                    "    timeout: 1m\n" + extra;
  out += pad + "    spec:\n" + pad + "      shell: Bash\n" + pad + "      source:\n" + pad +
         "        type: Inline\n" + pad + "        spec:\n" + pad + "          script: |\n";
  std::istringstream in(script);
  std::string line;
  while (std::getline(in, line)) out += pad + "            " + line + "\n";
  return out;
}

std::string custom_pipeline(const std::string& id, const std::string& steps,
                            const std::string& stage_extra = "",
                            const std::string& pipeline_extra = "") {
  return "pipeline:\n  identifier: " + id + "\n  name: " + id + "\n" + pipeline_extra +
         "  stages:\n    - stage:\n        identifier: s\n        name: S\n        type: Custom\n" +
         stage_extra + "        spec:\n          execution:\n            steps:\n" + steps;
}

class Pipelines : public ::testing::Test {
protected:
  void SetUp() override {
    stack_.start_coordinator();
    stack_.start_delegate("alpha", {plugin_dir()}, 4);
    ASSERT_TRUE(stack_.wait_for_delegates(1));
  }

  json apply(const std::string& text) {
    auto r = stack_.apply_text("p.yaml", text);
    EXPECT_EQ(stack_.last_status(), 200) << r.dump(2);
    return r;
  }
  std::string run(const std::string& pipeline, const json& set = json::object(),
                  const std::string& user = "carol") {
    auto r = stack_.post_as(user, "/api/v1/pipelines/" + pipeline + "/executions", {{"set", set}});
    EXPECT_EQ(stack_.last_status(), 201) << r.dump(2);
    return r.value("id", "");
  }
  json execution(const std::string& id) { return stack_.get("/api/v1/executions/" + id); }
  // The step record named `path` in stage `stage`.
  static json step(const json& e, const std::string& stage, const std::string& path) {
    for (const auto& s : e["stages"]) {
      if (s["identifier"] != stage) continue;
      for (const auto& t : s["steps"]) {
        if (t["identifier"] == path) return t;
      }
    }
    return json();
  }
  bool wait_for_status(const std::string& id, const std::string& stage, const std::string& path,
                       const std::string& status) {
    return wait_until([&] { return step(execution(id), stage, path)["status"] == status; },
                      std::chrono::seconds(30));
  }

  TempDir dir_{"capstan-pipelines"};
  Stack stack_{dir_.path()};
};

TEST_F(Pipelines, RetryRunsAFailingStepAgainUntilItSucceeds) {
  auto counter = (dir_ / "count").string();
  apply(custom_pipeline(
      "flaky",
      shell("flaky",
            "n=$(cat " + counter + " 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > " + counter +
                "\necho \"attempt $n\"\n[ $n -ge 3 ]",
            14,
            "                  failureStrategies:\n"
            "                    - onFailure:\n"
            "                        errors: [AllErrors]\n"
            "                        action:\n"
            "                          type: Retry\n"
            "                          spec:\n"
            "                            retryCount: 3\n"
            "                            retryIntervals: [1s]\n"
            "                            onRetryFailure: {action: {type: MarkAsFailure}}\n")));
  auto id = run("flaky");
  auto e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  auto s = step(e, "s", "flaky");
  EXPECT_EQ(s["retries"], 2);
  EXPECT_EQ(s["attempt"], 3);
  auto logs = stack_.logs(id);
  EXPECT_NE(logs.find("retry 1 of 3"), std::string::npos) << logs;
  EXPECT_NE(logs.find("retry 2 of 3"), std::string::npos) << logs;
  EXPECT_NE(logs.find("attempt 3"), std::string::npos) << logs;

  // With too few retries the failure stands, and the onRetryFailure action decides.
  std::filesystem::remove(counter);
  apply(custom_pipeline(
      "flaky2", shell("flaky",
                      "n=$(cat " + counter + " 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > " +
                          counter + "\n[ $n -ge 5 ]",
                      14,
                      "                  failureStrategies:\n"
                      "                    - onFailure:\n"
                      "                        errors: [AllErrors]\n"
                      "                        action:\n"
                      "                          type: Retry\n"
                      "                          spec:\n"
                      "                            retryCount: 1\n"
                      "                            retryIntervals: [1s]\n"
                      "                            onRetryFailure: {action: {type: Ignore}}\n") +
                    shell("after", "echo after", 14)));
  e = stack_.wait_for_end(run("flaky2"));
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  EXPECT_EQ(step(e, "s", "flaky")["status"], "IgnoreFailed");
  EXPECT_EQ(step(e, "s", "after")["status"], "Succeeded");
}

// A CD service, an environment and a KubernetesDirect infrastructure: Shell Script steps are
// generic, so a Deployment stage runs them without a cluster.
std::string deployment_objects(const std::string& extra_infra = "") {
  return R"(connector:
  identifier: k8s
  name: k8s
  type: K8sCluster
  spec:
    credential:
      type: Kubeconfig
      spec:
        path: /nonexistent/kubeconfig
---
service:
  identifier: myapp
  name: myapp
  serviceDefinition:
    type: Kubernetes
    spec:
      manifests:
        - manifest:
            identifier: app
            type: K8sManifest
            spec:
              store:
                type: Inline
                spec:
                  content: "kind: ConfigMap"
      artifacts:
        primary:
          sources:
            - identifier: myapp
              type: DockerRegistry
              spec:
                imagePath: myorg/myapp
                tag: <+input>.allowedValues(v1.9.0,v2.0.0,v-bad)
      variables:
        - name: greeting
          type: String
          value: hello from <+env.name>
---
environment:
  identifier: dev
  name: dev
  type: PreProduction
---
infrastructureDefinition:
  identifier: sandbox
  name: sandbox
  environmentRef: dev
  deploymentType: Kubernetes
  type: KubernetesDirect
)" + extra_infra +
         R"(  spec:
    connectorRef: k8s
    namespace: default
)";
}

std::string deploy_stage(const std::string& id, const std::string& steps,
                         const std::string& rollback, const std::string& extra = "") {
  return "    - stage:\n        identifier: " + id + "\n        name: " + id +
         "\n        type: Deployment\n" + extra +
         "        spec:\n          service:\n            serviceRef: myapp\n"
         "          environment:\n            environmentRef: dev\n"
         "            infrastructureDefinitions:\n              - identifier: sandbox\n"
         "          execution:\n            steps:\n" +
         steps + (rollback.empty() ? "" : "            rollbackSteps:\n" + rollback);
}

TEST_F(Pipelines, AFailedDeploymentRollsTheStageBack) {
  apply(deployment_objects());
  apply("pipeline:\n  identifier: cd\n  name: cd\n  stages:\n" +
        deploy_stage("deploy",
                     shell("rollout",
                           "echo \"deploying <+artifact.image> as <+infra.releaseName> "
                           "in <+infra.namespace>: <+serviceVariables.greeting>\"",
                           14) +
                         shell("verify", "[ \"<+artifact.tag>\" != v-bad ]", 14) +
                         shell("never", "echo never", 14),
                     shell("undo", "echo \"rolling back <+artifact.image>\"", 14)));
  auto id = run("cd", {{"tag", "v2.0.0"}});
  auto e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  EXPECT_EQ(step(e, "deploy", "undo")["status"], "Skipped");
  auto logs = stack_.logs(id);
  EXPECT_NE(logs.find("deploying myorg/myapp:v2.0.0 as release-"), std::string::npos) << logs;
  EXPECT_NE(logs.find("in default: hello from dev"), std::string::npos) << logs;
  EXPECT_EQ(e["stages"][0]["resolved"]["artifact"], "myorg/myapp:v2.0.0");

  // A failure rolls the stage back (the default of Deployment stages): later steps are skipped,
  // rollbackSteps run, the execution fails.
  id = run("cd", {{"tag", "v-bad"}});
  e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Failed") << e.dump(2);
  EXPECT_EQ(step(e, "deploy", "rollout")["status"], "Succeeded");
  EXPECT_EQ(step(e, "deploy", "verify")["status"], "Failed");
  EXPECT_EQ(step(e, "deploy", "never")["status"], "Skipped");
  EXPECT_EQ(step(e, "deploy", "undo")["status"], "Succeeded");
  EXPECT_EQ(step(e, "deploy", "undo")["section"], "rollback");
  EXPECT_EQ(e["stages"][0]["rollback"]["status"], "Succeeded");
  EXPECT_NE(e["stages"][0]["message"].get<std::string>().find("rolled back"), std::string::npos);
  logs = stack_.logs(id);
  EXPECT_NE(logs.find("rolling back myorg/myapp:v-bad"), std::string::npos) << logs;

  // A value outside allowedValues is refused before anything runs.
  stack_.post("/api/v1/pipelines/cd/executions", {{"set", {{"tag", "latest"}}}});
  EXPECT_EQ(stack_.last_status(), 422);
}

TEST_F(Pipelines, PipelineRollbackUndoesEarlierStagesLastFirst) {
  apply(deployment_objects());
  std::string stage2_extra = "        failureStrategies:\n"
                             "          - onFailure:\n"
                             "              errors: [AllErrors]\n"
                             "              action: {type: PipelineRollback}\n";
  apply("pipeline:\n  identifier: two\n  name: two\n  stages:\n" +
        deploy_stage("first", shell("a", "echo first deployed", 14),
                     shell("undo_first", "echo undo first", 14)) +
        deploy_stage("second", shell("b", "exit 3", 14),
                     shell("undo_second", "echo undo second", 14), stage2_extra) +
        deploy_stage("third", shell("c", "echo third", 14), ""));
  auto id = run("two", {{"first.spec.service.serviceInputs.serviceDefinition.spec.artifacts."
                         "primary.sources.myapp.spec.tag",
                         "v1.9.0"},
                        {"second.spec.service.serviceInputs.serviceDefinition.spec.artifacts."
                         "primary.sources.myapp.spec.tag",
                         "v1.9.0"},
                        {"third.spec.service.serviceInputs.serviceDefinition.spec.artifacts."
                         "primary.sources.myapp.spec.tag",
                         "v1.9.0"}});
  auto e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Failed") << e.dump(2);
  EXPECT_EQ(e["stages"][2]["status"], "Skipped");
  auto logs = stack_.logs(id);
  auto second = logs.find("undo second");
  auto first = logs.find("undo first");
  ASSERT_NE(second, std::string::npos) << logs;
  ASSERT_NE(first, std::string::npos) << logs;
  EXPECT_LT(second, first) << "the failed stage rolls back first, then the one before it";
  EXPECT_NE(e["message"].get<std::string>().find("pipeline rolled back"), std::string::npos);
}

const char* kApprovalObjects = R"(userGroup:
  identifier: ops
  name: Ops
  users: [alice, bob]
)";

std::string approval_step(const std::string& extra_spec, const std::string& timeout = "1h") {
  return "              - step:\n"
         "                  type: HarnessApproval\n"
         "                  identifier: approve\n"
         "                  name: Approve\n"
         "                  timeout: " +
         timeout +
         "\n"
         "                  spec:\n"
         "                    approvalMessage: Ship <+pipeline.sequenceId>?\n"
         "                    approvers:\n"
         "                      userGroups: [ops]\n" +
         extra_spec;
}

TEST_F(Pipelines, ApprovalsNeedTheirApproversAndPassTheirInputsOn) {
  apply(kApprovalObjects);
  apply(custom_pipeline(
      "gate", approval_step("                      minimumCount: 2\n"
                            "                      disallowPipelineExecutor: true\n"
                            "                    approverInputs:\n"
                            "                      - name: reason\n"
                            "                        defaultValue: none\n") +
                  shell("after",
                        "echo \"reason: <+pipeline.stages.s.spec.execution.steps.approve.output."
                        "approverInputs.reason>\"",
                        14)));
  auto id = run("gate", json::object(), "alice");
  ASSERT_TRUE(wait_for_status(id, "s", "approve", "ApprovalWaiting"));
  auto waits = stack_.get("/api/v1/waits");
  ASSERT_EQ(waits["items"].size(), 1u) << waits.dump(2);
  EXPECT_EQ(waits["items"][0]["kind"], "Approval");
  auto path = "/api/v1/executions/" + id + "/approvals";
  stack_.post_as("mallory", path, {{"action", "approve"}});
  EXPECT_EQ(stack_.last_status(), 403) << "not an approver";
  auto r = stack_.post_as("alice", path, {{"action", "approve"}});
  EXPECT_EQ(stack_.last_status(), 403) << "alice started the run: " << r.dump();
  r = stack_.post_as("bob", path, {{"action", "approve"}, {"inputs", {{"colour", "red"}}}});
  EXPECT_EQ(stack_.last_status(), 422) << r.dump();
  r = stack_.post_as("bob", path,
                     {{"action", "approve"}, {"comment", "lgtm"}, {"inputs", {{"reason", "ok"}}}});
  ASSERT_EQ(stack_.last_status(), 200) << r.dump();
  EXPECT_EQ(r["status"], "ApprovalWaiting") << "one of two approvals";
  stack_.post_as("bob", path, {{"action", "approve"}});
  EXPECT_EQ(stack_.last_status(), 409) << "bob answered already";
  // A second approver: carol joins the group (the group is read when the answer comes).
  apply(std::string(kApprovalObjects)
            .replace(std::string(kApprovalObjects).find("bob]"), 4, "bob, carol]"));
  r = stack_.post_as("carol", path, {{"action", "approve"}});
  ASSERT_EQ(stack_.last_status(), 200) << r.dump();
  auto e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  EXPECT_EQ(step(e, "s", "approve")["outputs"]["reason"], "ok");
  EXPECT_NE(stack_.logs(id).find("reason: ok"), std::string::npos) << stack_.logs(id);
  auto audit = stack_.get("/api/v1/audit?target=" + id);
  std::vector<std::string> actions;
  for (const auto& a : audit["items"])
    actions.push_back(a["user"].get<std::string>() + ":" + a["action"].get<std::string>());
  EXPECT_NE(std::find(actions.begin(), actions.end(), "alice:run"), actions.end());
  EXPECT_NE(std::find(actions.begin(), actions.end(), "bob:approve"), actions.end());
  EXPECT_NE(std::find(actions.begin(), actions.end(), "carol:approve"), actions.end());
}

TEST_F(Pipelines, ARejectedOrExpiredApprovalFollowsItsFailureStrategy) {
  apply(kApprovalObjects);
  apply(custom_pipeline("reject", approval_step("") + shell("after", "echo after", 14)));
  auto id = run("reject");
  ASSERT_TRUE(wait_for_status(id, "s", "approve", "ApprovalWaiting"));
  auto r = stack_.post_as("bob", "/api/v1/executions/" + id + "/approvals",
                          {{"action", "reject"}, {"comment", "not today"}});
  ASSERT_EQ(stack_.last_status(), 200) << r.dump();
  auto e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Failed");
  EXPECT_EQ(step(e, "s", "approve")["status"], "ApprovalRejected");
  EXPECT_EQ(step(e, "s", "approve")["errorType"], "ApprovalRejection");
  EXPECT_NE(
      step(e, "s", "approve")["message"].get<std::string>().find("rejected by bob: not today"),
      std::string::npos);
  EXPECT_EQ(step(e, "s", "after")["status"], "Skipped");

  // No answer within the timeout: Expired, a Timeout error, here ignored.
  apply(custom_pipeline("expire", approval_step("", "2s") + shell("after", "echo after", 14),
                        "        failureStrategies:\n"
                        "          - onFailure:\n"
                        "              errors: [Timeout]\n"
                        "              action: {type: Ignore}\n"));
  e = stack_.wait_for_end(run("expire"));
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  EXPECT_EQ(step(e, "s", "approve")["status"], "IgnoreFailed");
  EXPECT_EQ(step(e, "s", "approve")["errorType"], "Timeout");
  EXPECT_EQ(step(e, "s", "after")["status"], "Succeeded");
}

TEST_F(Pipelines, ParallelStepGroupsRunAtTheSameTime) {
  // Each side waits for a file the other side writes: they only both succeed concurrently.
  auto d = dir_.path().string();
  auto wait_for = [&](const std::string& f) {
    return "touch " + d + "/" + f + "-started\nfor i in $(seq 100); do [ -f " + d + "/" +
           (f == "a" ? "b" : "a") + "-started ] && exit 0; sleep 0.1; done\nexit 1";
  };
  std::string steps = "              - parallel:\n"
                      "                  - stepGroup:\n"
                      "                      identifier: ga\n"
                      "                      name: A\n"
                      "                      steps:\n" +
                      shell("a1", wait_for("a"), 24) + shell("a2", "echo a2 done", 24) +
                      "                  - stepGroup:\n"
                      "                      identifier: gb\n"
                      "                      name: B\n"
                      "                      steps:\n" +
                      shell("b1", wait_for("b"), 24) + shell("b2", "echo b2 done", 24) +
                      shell("after", "echo after both", 14);
  apply(custom_pipeline("par", steps));
  auto id = run("par");
  auto e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2) << stack_.logs(id);
  EXPECT_EQ(step(e, "s", "ga.a2")["status"], "Succeeded");
  EXPECT_EQ(step(e, "s", "gb.b2")["status"], "Succeeded");
  EXPECT_EQ(step(e, "s", "ga")["kind"], "StepGroup");
  // "after" starts only when both groups ended.
  EXPECT_GE(step(e, "s", "after")["startedAt"].get<std::int64_t>(),
            step(e, "s", "gb")["endedAt"].get<std::int64_t>());
}

TEST_F(Pipelines, ACoordinatorKilledDuringAnApprovalResumesThere) {
  apply(kApprovalObjects);
  apply(custom_pipeline("gate", shell("before", "echo before", 14) + approval_step("") +
                                    shell("after", "echo after", 14)));
  auto id = run("gate");
  ASSERT_TRUE(wait_for_status(id, "s", "approve", "ApprovalWaiting"));
  stack_.kill_coordinator();
  stack_.start_coordinator();
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  auto e = execution(id);
  EXPECT_EQ(e["status"], "Running");
  EXPECT_EQ(step(e, "s", "before")["status"], "Succeeded");
  EXPECT_EQ(step(e, "s", "before")["attempt"], 1) << "nothing ran twice";
  EXPECT_EQ(step(e, "s", "approve")["status"], "ApprovalWaiting");
  auto r =
      stack_.post_as("alice", "/api/v1/executions/" + id + "/approvals", {{"action", "approve"}});
  ASSERT_EQ(stack_.last_status(), 200) << r.dump();
  e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  EXPECT_EQ(step(e, "s", "after")["status"], "Succeeded");
}

TEST_F(Pipelines, SecretsAreMaskedInLogsOutputsAndAnswers) {
  const std::string value = "s3cr3t-Hunter2-value";
  apply("secret:\n  identifier: db_pass\n  name: db\n  type: SecretText\n  spec:\n"
        "    secretManagerIdentifier: harnessSecretManager\n    valueType: Inline\n    value: " +
        value + "\n");
  std::string steps = shell("leak",
                            "echo \"password is <+secrets.getValue(\"db_pass\")>\"\n"
                            "OUT=\"<+secrets.getValue(\"db_pass\")>\"\n"
                            "echo \"again $OUT\"",
                            14);
  // The step also hands the secret on as an output variable.
  steps.insert(steps.find("                    source:"), "                    outputVariables:\n"
                                                          "                      - name: copied\n"
                                                          "                        type: String\n"
                                                          "                        value: OUT\n");
  apply(custom_pipeline("leaky", steps + shell("fail",
                                               "echo <+secrets.getValue(\"db_pass\")> >&2\n"
                                               "exit 1",
                                               14)));
  auto id = run("leaky");
  auto e = stack_.wait_for_end(id);
  auto logs = stack_.logs(id);
  EXPECT_NE(logs.find("password is **********"), std::string::npos) << logs;
  EXPECT_EQ(logs.find(value), std::string::npos) << logs;
  auto body = stack_.get("/api/v1/executions/" + id).dump();
  EXPECT_EQ(body.find(value), std::string::npos) << body;
  EXPECT_EQ(stack_.get("/api/v1/objects/secret/db_pass").dump().find(value), std::string::npos);
  EXPECT_EQ(stack_.get("/api/v1/audit").dump().find(value), std::string::npos);
  // At rest: the key file is private, and the value is nowhere in the database file.
  auto data = dir_ / "coordinator";
  struct stat st {};
  ASSERT_EQ(::stat((data / "secrets.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  for (const auto& f : std::filesystem::directory_iterator(data)) {
    if (f.path().filename().string().rfind("capstan.db", 0) != 0) continue;
    EXPECT_EQ(read_file(f.path()).find(value), std::string::npos) << f.path();
  }
}

// What a step of a Deployment stage receives, in the shape deployment plugins read (the
// kubernetes plugin's tests feed it the same): the service as declared with its runtime inputs
// filled in and the folder it came from, the resolved artifact, the environment, the
// infrastructure and the connectors it names.
TEST_F(Pipelines, DeploymentStepsGetTheServiceEnvironmentInfrastructureAndConnectors) {
  stack_.start_delegate("context", {CAPSTAN_ECHO_PLUGIN_DIR}, 1);
  ASSERT_TRUE(stack_.wait_for_delegates(2));
  // Applied from a folder, as `capstan apply -f DIR` does: Local stores start there.
  stack_.post("/api/v1/apply", {{"files",
                                 {{{"name", "objects.yaml"},
                                   {"content", deployment_objects()},
                                   {"dir", dir_.path().string()}}}}});
  ASSERT_EQ(stack_.last_status(), 200);
  apply("pipeline:\n  identifier: ctx\n  name: ctx\n"
        "  variables:\n"
        "    - name: note\n"
        "      type: String\n"
        "      value: \"say \\\"hi\\\"\\n\\tthere\"\n"
        "  stages:\n" +
        deploy_stage("deploy",
                     "              - step:\n"
                     "                  type: Echo\n"
                     "                  identifier: show\n"
                     "                  name: show\n"
                     "                  spec:\n"
                     "                    message: hi\n"
                     "                    showContext: true\n",
                     ""));
  auto id = run("ctx", {{"tag", "v2.0.0"}});
  auto e = stack_.wait_for_end(id);
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2);
  auto logs = stack_.logs(id);
  auto at = logs.find("context: {");
  ASSERT_NE(at, std::string::npos) << logs;
  auto line = logs.substr(at + 9, logs.find('\n', at) - at - 9);
  auto ctx = json::parse(line);

  const auto& svc = ctx["service"];
  EXPECT_EQ(svc["identifier"], "myapp");
  EXPECT_EQ(svc["baseDir"], dir_.path().string());
  const auto& def = svc["serviceDefinition"];
  EXPECT_EQ(def["type"], "Kubernetes");
  EXPECT_EQ(def["spec"]["manifests"][0]["identifier"], "app");
  EXPECT_EQ(def["spec"]["manifests"][0]["type"], "K8sManifest");
  EXPECT_EQ(def["spec"]["manifests"][0]["spec"]["store"]["type"], "Inline");
  EXPECT_EQ(def["spec"]["manifests"][0]["spec"]["store"]["spec"]["content"], "kind: ConfigMap");
  const auto& source = def["spec"]["artifacts"]["primary"]["sources"][0];
  EXPECT_EQ(source["spec"]["imagePath"], "myorg/myapp");
  EXPECT_EQ(source["spec"]["tag"], "v2.0.0"); // the runtime input, filled in
  EXPECT_EQ(def["spec"]["variables"][0]["name"], "greeting");
  EXPECT_EQ(def["spec"]["variables"][0]["value"], "hello from dev");
  EXPECT_EQ(ctx["artifact"]["image"], "myorg/myapp:v2.0.0");
  EXPECT_EQ(ctx["artifact"]["tag"], "v2.0.0");

  EXPECT_EQ(ctx["environment"]["identifier"], "dev");
  EXPECT_EQ(ctx["environment"]["type"], "PreProduction");
  EXPECT_TRUE(ctx["environment"]["overrides"].is_object()) << ctx["environment"].dump(2);
  EXPECT_EQ(ctx["environment"]["baseDir"], dir_.path().string());

  const auto& infra = ctx["infrastructure"];
  EXPECT_EQ(infra["type"], "KubernetesDirect");
  EXPECT_EQ(infra["namespace"], "default");
  EXPECT_EQ(infra["connectorRef"], "k8s");
  EXPECT_EQ(infra["releaseName"].get<std::string>().rfind("release-", 0), 0u) << infra.dump(2);
  EXPECT_EQ(ctx["connectors"]["k8s"]["type"], "K8sCluster");
  EXPECT_EQ(ctx["connectors"]["k8s"]["credential"]["type"], "Kubeconfig");
  EXPECT_EQ(ctx["connectors"]["k8s"]["credential"]["kubeconfigPath"], "/nonexistent/kubeconfig");

  // What every step gets, whatever its stage.
  EXPECT_EQ(ctx["schemaVersion"], 1);
  EXPECT_EQ(ctx["pipeline"]["identifier"], "ctx");
  EXPECT_EQ(ctx["pipeline"]["executionId"], id);
  EXPECT_EQ(ctx["pipeline"]["sequenceId"], 1);
  EXPECT_EQ(ctx["pipeline"]["triggeredBy"], "carol");
  EXPECT_EQ(ctx["pipeline"]["variables"]["note"], "say \"hi\"\n\tthere");
  EXPECT_EQ(ctx["stage"]["identifier"], "deploy");
  EXPECT_EQ(ctx["stage"]["type"], "Deployment");
  EXPECT_TRUE(ctx["stage"]["variables"].is_object()) << ctx["stage"].dump();
  EXPECT_EQ(ctx["step"]["identifier"], "show");
  EXPECT_EQ(ctx["step"]["type"], "Echo");
  EXPECT_EQ(ctx["step"]["path"], "show");
  EXPECT_EQ(ctx["step"]["rollback"], false);
  EXPECT_GT(ctx["step"]["timeoutMs"].get<std::int64_t>(), 0);
  EXPECT_TRUE(ctx["stageOutputs"].is_object()) << ctx.dump(2);
  const auto& ex = ctx["expressions"];
  EXPECT_EQ(ex["pipeline.sequenceId"], "1");
  EXPECT_EQ(ex["pipeline.executionId"], id);
  EXPECT_EQ(ex["pipeline.variables.note"], "say \"hi\"\n\tthere");
  EXPECT_EQ(ex["stage.identifier"], "deploy");
  EXPECT_EQ(ex["artifact.image"], "myorg/myapp:v2.0.0");
  EXPECT_EQ(ex["env.identifier"], "dev");
  EXPECT_EQ(ex["infra.namespace"], "default");
  EXPECT_EQ(ex["INFRA_KEY"], infra["infraKey"]);
}

TEST_F(Pipelines, DeploymentsToOneInfrastructureAndReleaseQueue) {
  apply(deployment_objects());
  auto gate = (dir_ / "release-first").string();
  apply("pipeline:\n  identifier: q\n  name: q\n  stages:\n" +
        deploy_stage("deploy",
                     shell("rollout",
                           "if [ \"<+artifact.tag>\" = v1.9.0 ]; then\n"
                           "  for i in $(seq 300); do [ -f " +
                               gate +
                               " ] && exit 0; sleep 0.1; done\n"
                               "  exit 1\nfi\necho second",
                           14),
                     ""));
  auto first = run("q", {{"tag", "v1.9.0"}});
  ASSERT_TRUE(wait_for_status(first, "deploy", "rollout", "Running"));
  auto second = run("q", {{"tag", "v2.0.0"}});
  ASSERT_TRUE(wait_until([&] { return execution(second)["stages"][0]["status"] == "Queued"; },
                         std::chrono::seconds(10)))
      << execution(second).dump(2);
  auto queued = execution(second)["stages"][0];
  EXPECT_NE(queued["message"].get<std::string>().find(first), std::string::npos)
      << "names what it waits for: " << queued.dump();
  EXPECT_EQ(step(execution(second), "deploy", "rollout")["status"], "NotStarted");
  write_file(gate, "go");
  auto e1 = stack_.wait_for_end(first);
  auto e2 = stack_.wait_for_end(second);
  EXPECT_EQ(e1["status"], "Succeeded") << e1.dump(2);
  EXPECT_EQ(e2["status"], "Succeeded") << e2.dump(2);
  EXPECT_GE(step(e2, "deploy", "rollout")["startedAt"].get<std::int64_t>(),
            e1["stages"][0]["endedAt"].get<std::int64_t>());

  // With allowSimultaneousDeployments they do not wait for each other.
  apply(deployment_objects("  allowSimultaneousDeployments: true\n"));
  std::filesystem::remove(gate);
  first = run("q", {{"tag", "v1.9.0"}});
  ASSERT_TRUE(wait_for_status(first, "deploy", "rollout", "Running"));
  second = run("q", {{"tag", "v2.0.0"}});
  e2 = stack_.wait_for_end(second);
  EXPECT_EQ(e2["status"], "Succeeded");
  EXPECT_EQ(execution(first)["status"], "Running") << "the second did not wait for the first";
  write_file(gate, "go");
  EXPECT_EQ(stack_.wait_for_end(first)["status"], "Succeeded");
}

TEST_F(Pipelines, ExecutionInputsAreAskedWhenTheStepStarts) {
  // The environment variable's value is an execution input: asked when the step starts.
  std::string step_yaml = shell("greet", "echo \"colour is $COLOUR\"", 14);
  step_yaml.insert(
      step_yaml.find("                    source:"),
      "                    environmentVariables:\n"
      "                      - name: COLOUR\n"
      "                        type: String\n"
      "                        value: <+input>.executionInput().allowedValues(red,blue)\n");
  apply(custom_pipeline("ask", shell("before", "echo before", 14) + step_yaml));
  auto id = run("ask");
  ASSERT_TRUE(wait_for_status(id, "s", "greet", "InputWaiting")) << execution(id).dump(2);
  EXPECT_EQ(step(execution(id), "s", "before")["status"], "Succeeded");
  auto path = "/api/v1/executions/" + id + "/inputs";
  auto r = stack_.post_as("dave", path, {{"values", {{"COLOUR", "green"}}}});
  EXPECT_EQ(stack_.last_status(), 422) << r.dump();
  EXPECT_NE(r.dump().find("allowed values (red, blue)"), std::string::npos) << r.dump();
  r = stack_.post_as("dave", path, {{"values", {{"COLOUR", "blue"}}}});
  ASSERT_EQ(stack_.last_status(), 200) << r.dump();
  auto e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  EXPECT_NE(stack_.logs(id).find("colour is blue"), std::string::npos) << stack_.logs(id);
}

TEST_F(Pipelines, ManualInterventionWaitsForAChoice) {
  apply(custom_pipeline("manual",
                        shell("flaky", "exit 2", 14,
                              "                  failureStrategies:\n"
                              "                    - onFailure:\n"
                              "                        errors: [AllErrors]\n"
                              "                        action:\n"
                              "                          type: ManualIntervention\n"
                              "                          spec:\n"
                              "                            timeout: 1h\n"
                              "                            onTimeout: {action: {type: Abort}}\n") +
                            shell("after", "echo after", 14)));
  auto id = run("manual");
  ASSERT_TRUE(wait_for_status(id, "s", "flaky", "InterventionWaiting"));
  auto r = stack_.post_as("erin", "/api/v1/executions/" + id + "/interventions",
                          {{"action", "MarkAsSuccess"}, {"comment", "known flake"}});
  ASSERT_EQ(stack_.last_status(), 200) << r.dump();
  auto e = stack_.wait_for_end(id);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  EXPECT_EQ(step(e, "s", "flaky")["status"], "Succeeded");
  EXPECT_EQ(step(e, "s", "after")["status"], "Succeeded");
  auto audit = stack_.get("/api/v1/audit?action=intervene");
  ASSERT_FALSE(audit["items"].empty());
  EXPECT_EQ(audit["items"][0]["user"], "erin");
}

TEST_F(Pipelines, ConditionsDecideWhatRuns) {
  apply(custom_pipeline(
      "cond",
      shell("fails", "exit 1", 14) + shell("skipped", "echo skipped", 14) +
          shell("cleanup", "echo cleanup ran", 14,
                "                  when:\n"
                "                    stageStatus: All\n") +
          shell("only_prod", "echo prod", 14,
                "                  when:\n"
                "                    stageStatus: All\n"
                "                    condition: <+pipeline.variables.env> == \"prod\"\n"),
      "", "  variables:\n    - name: env\n      type: String\n      value: dev\n"));
  auto e = stack_.wait_for_end(run("cond"));
  EXPECT_EQ(e["status"], "Failed");
  EXPECT_EQ(step(e, "s", "skipped")["status"], "Skipped");
  EXPECT_EQ(step(e, "s", "cleanup")["status"], "Succeeded");
  EXPECT_EQ(step(e, "s", "only_prod")["status"], "Skipped");
}

TEST_F(Pipelines, ObjectsInUseCannotBeDeleted) {
  apply(deployment_objects());
  apply("pipeline:\n  identifier: cd\n  name: cd\n  stages:\n" +
        deploy_stage("deploy", shell("rollout", "echo hi", 14), ""));
  auto r = stack_.del("/api/v1/objects/service/myapp");
  EXPECT_EQ(stack_.last_status(), 409) << r.dump();
  EXPECT_NE(r.dump().find("pipeline 'cd'"), std::string::npos) << r.dump();
  r = stack_.del("/api/v1/objects/pipeline/cd");
  EXPECT_EQ(stack_.last_status(), 200) << r.dump();
  r = stack_.del("/api/v1/objects/service/myapp");
  EXPECT_EQ(stack_.last_status(), 200) << r.dump();
  stack_.get("/api/v1/objects/service/myapp");
  EXPECT_EQ(stack_.last_status(), 404);
  auto history = stack_.get("/api/v1/objects/service/myapp/versions");
  ASSERT_EQ(history["items"].size(), 2u);
  EXPECT_EQ(history["items"][0]["deleted"], true);
}

} // namespace
} // namespace capstan::testing
