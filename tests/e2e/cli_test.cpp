// The capstan CLI as a user runs it: up, apply, run, logs, executions, delegates, down, in a
// temporary home, plus the bad inputs a user will hit.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "capstan/testing/testing.h"

namespace capstan::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// A home with a stack started by `capstan up`, always stopped by `capstan down`.
class Home {
public:
  Home() : dir_("capstan-e2e") {}
  ~Home() { capstan({"down"}); }

  process::RunResult capstan(std::vector<std::string> args,
                             std::chrono::milliseconds timeout = 60s) {
    std::vector<std::string> argv = {binary("capstan").string(), "--home",
                                     (dir_ / "home").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {{"HOME", dir_.path().string()}, {"NO_COLOR", "1"}}, timeout,
               source_dir().string());
  }
  process::RunResult up(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"up", "--api-port", "0", "--bind", "tcp://127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return capstan(args);
  }
  const TempDir& dir() const { return dir_; }

private:
  TempDir dir_;
};

std::string both(const process::RunResult& r) {
  return r.out + r.err;
}

TEST(Cli, UpApplyRunLogsExecutionsDown) {
  Home h;
  auto up = h.up();
  ASSERT_TRUE(up.status.success()) << both(up);
  EXPECT_NE(up.out.find("coordinator started"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("delegate local started"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("step types: "), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("ShellScript"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("sandbox started"), std::string::npos) << up.out;
  EXPECT_NE(read_file(h.dir().path() / "home" / "sandbox" / "kubeconfig").find("server: https://"),
            std::string::npos);
  EXPECT_NE(up.out.find("deployment target: environment sandbox, infrastructure sandbox"),
            std::string::npos)
      << up.out;
  EXPECT_NE(up.out.find("registered connector/sandbox, environment/sandbox, "
                        "infrastructureDefinition/sandbox"),
            std::string::npos)
      << up.out;

  auto again = h.up();
  ASSERT_TRUE(again.status.success()) << both(again);
  EXPECT_NE(again.out.find("coordinator is already running"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("delegate local is already running"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("sandbox is already running"), std::string::npos) << again.out;
  EXPECT_EQ(again.out.find("registered"), std::string::npos) << again.out; // nothing new

  // The default target, as a user sees it.
  auto connector = h.capstan({"get", "connector", "sandbox", "-o", "yaml"});
  ASSERT_TRUE(connector.status.success()) << both(connector);
  EXPECT_NE(connector.out.find((h.dir().path() / "home" / "sandbox" / "kubeconfig").string()),
            std::string::npos)
      << connector.out;
  EXPECT_NE(connector.out.find("type: Kubeconfig"), std::string::npos) << connector.out;
  auto infra = h.capstan({"get", "infrastructureDefinition", "sandbox", "-o", "yaml"});
  ASSERT_TRUE(infra.status.success()) << both(infra);
  EXPECT_NE(infra.out.find("connectorRef: sandbox"), std::string::npos) << infra.out;
  EXPECT_NE(infra.out.find("environmentRef: sandbox"), std::string::npos) << infra.out;

  // A user's own object under the same identifier is never overwritten.
  write_file(h.dir() / "mine.yaml",
             "environment:\n  identifier: sandbox\n  name: mine\n  type: Production\n");
  ASSERT_TRUE(h.capstan({"apply", "-f", (h.dir() / "mine.yaml").string()}).status.success());
  auto kept = h.up();
  ASSERT_TRUE(kept.status.success()) << both(kept);
  EXPECT_NE(kept.out.find("environment/sandbox already exists and differs from the sandbox's "
                          "own; left as it is"),
            std::string::npos)
      << kept.out;
  EXPECT_NE(h.capstan({"get", "environment", "sandbox", "-o", "yaml"}).out.find("type: Production"),
            std::string::npos);

  auto apply = h.capstan({"apply", "-f", "examples/"});
  ASSERT_TRUE(apply.status.success()) << both(apply);
  EXPECT_EQ(apply.out, "pipeline/shell_demo created\n");
  auto unchanged = h.capstan({"apply", "-f", "examples/shell-pipeline.yaml"});
  EXPECT_EQ(unchanged.out, "pipeline/shell_demo unchanged\n");

  auto run = h.capstan({"run", "shell_demo", "--set", "greeting=Howdy"});
  ASSERT_EQ(run.status.exit_code, 0) << both(run);
  // Where the step ran: on its Running line, or on its end line when it ended before the CLI
  // saw it running.
  EXPECT_TRUE(run.out.find("build.version: Running on local") != std::string::npos ||
              run.out.find("build.version: Succeeded on local in") != std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("build.package | packaging release 1.0.1"), std::string::npos);
  EXPECT_NE(run.out.find("announce.say | Howdy from Shell demo #1"), std::string::npos);
  EXPECT_NE(run.out.find("announce.say: Succeeded"), std::string::npos);
  EXPECT_NE(run.out.find(": Succeeded in"), std::string::npos);

  auto list = h.capstan({"executions", "list", "-o", "json"});
  ASSERT_TRUE(list.status.success()) << both(list);
  auto items = json::parse(list.out);
  ASSERT_EQ(items.size(), 1u);
  std::string id = items[0]["id"];
  EXPECT_EQ(items[0]["status"], "Succeeded");

  auto table = h.capstan({"executions", "list"});
  EXPECT_NE(table.out.find("ID"), std::string::npos);
  EXPECT_NE(table.out.find(id), std::string::npos);

  auto get = h.capstan({"executions", "get", id.substr(0, 6)});
  ASSERT_TRUE(get.status.success()) << both(get);
  EXPECT_NE(get.out.find("Status:     Succeeded"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("build.version.version = 1.0.1"), std::string::npos) << get.out;

  auto yaml = h.capstan({"executions", "get", id, "-o", "yaml"});
  EXPECT_NE(yaml.out.find("status: Succeeded"), std::string::npos) << yaml.out;

  auto logs = h.capstan({"logs", id, "--step", "say"});
  ASSERT_TRUE(logs.status.success()) << both(logs);
  EXPECT_NE(logs.out.find("Howdy from Shell demo #1\nreleased 1.0.1\n"), std::string::npos)
      << logs.out;
  auto all = h.capstan({"logs", id, "-f"});
  EXPECT_NE(all.out.find("build.version | computed version 1.0.1"), std::string::npos);

  // The step-type catalog, with the schemas apply checks specs against.
  auto types = h.capstan({"step-types"});
  ASSERT_TRUE(types.status.success()) << both(types);
  EXPECT_NE(types.out.find("ShellScript"), std::string::npos) << types.out;
  EXPECT_NE(types.out.find("HarnessApproval"), std::string::npos) << types.out;
  auto shell_type = h.capstan({"step-types", "ShellScript", "-o", "json"});
  ASSERT_TRUE(shell_type.status.success()) << both(shell_type);
  auto shell_json = json::parse(shell_type.out);
  EXPECT_EQ(shell_json["runsOn"], "delegate");
  EXPECT_TRUE(shell_json["specSchema"].is_object()) << shell_type.out;
  EXPECT_EQ(h.capstan({"step-types", "Nope"}).status.exit_code, 1);

  auto delegates = h.capstan({"delegates"});
  EXPECT_NE(delegates.out.find("local"), std::string::npos) << delegates.out;
  EXPECT_NE(delegates.out.find("Connected"), std::string::npos) << delegates.out;

  auto down = h.capstan({"down"});
  ASSERT_TRUE(down.status.success()) << both(down);
  EXPECT_NE(down.out.find("delegate stopped"), std::string::npos) << down.out;
  EXPECT_NE(down.out.find("coordinator stopped"), std::string::npos) << down.out;
  EXPECT_NE(h.capstan({"down"}).out.find("nothing is running"), std::string::npos);

  // The coordinator is down: a clear message, a non-zero exit, no hang.
  auto gone = h.capstan({"executions", "list"}, 15s);
  EXPECT_EQ(gone.status.exit_code, 1);
  EXPECT_NE(gone.err.find("no coordinator found"), std::string::npos) << gone.err;
  EXPECT_NE(gone.err.find("capstan up"), std::string::npos) << gone.err;

  // History survives a restart.
  ASSERT_TRUE(h.up().status.success());
  auto after = h.capstan({"executions", "get", id});
  EXPECT_NE(after.out.find("Succeeded"), std::string::npos) << both(after);
}

TEST(Cli, BadInputGetsClearMessagesAndExitCodes) {
  Home h;
  ASSERT_TRUE(h.up().status.success());
  write_file(h.dir() / "broken.yaml", "pipeline:\n  identifier: x\n  name: [oops\n");
  auto broken = h.capstan({"apply", "-f", (h.dir() / "broken.yaml").string()});
  EXPECT_EQ(broken.status.exit_code, 2);
  EXPECT_NE(broken.err.find("broken.yaml:4:1:"), std::string::npos) << broken.err;

  std::string example = read_file(source_dir() / "examples" / "shell-pipeline.yaml");
  auto pos = example.find("type: ShellScript");
  write_file(h.dir() / "typo.yaml", example.replace(pos, 17, "type: ShelScript"));
  auto typo = h.capstan({"apply", "-f", (h.dir() / "typo.yaml").string()});
  EXPECT_EQ(typo.status.exit_code, 2);
  EXPECT_NE(typo.err.find("typo.yaml:19:25: unknown step type 'ShelScript'"), std::string::npos)
      << typo.err;
  EXPECT_NE(typo.err.find("ShellScript"), std::string::npos);

  // A known step type's spec is checked against the schema its plugin announced, with the
  // place of the offending value; an expression is accepted wherever a value is.
  std::string shell = read_file(source_dir() / "examples" / "shell-pipeline.yaml");
  shell.replace(shell.find("shell: Bash"), 11, "shell: Fish");
  write_file(h.dir() / "spec.yaml", shell);
  auto spec = h.capstan({"apply", "-f", (h.dir() / "spec.yaml").string()});
  EXPECT_EQ(spec.status.exit_code, 2);
  EXPECT_NE(spec.err.find("spec.yaml:24:28: step 'version' (ShellScript): spec/shell: "),
            std::string::npos)
      << spec.err;
  EXPECT_NE(spec.err.find("(enum)"), std::string::npos) << spec.err;
  shell = read_file(source_dir() / "examples" / "shell-pipeline.yaml");
  shell.replace(shell.find("shell: Bash"), 11, "shell: <+pipeline.variables.greeting>");
  write_file(h.dir() / "spec.yaml", shell);
  auto dry = h.capstan({"apply", "--dry-run", "-f", (h.dir() / "spec.yaml").string()});
  EXPECT_EQ(dry.status.exit_code, 0) << both(dry);

  EXPECT_EQ(h.capstan({"run", "nope"}).status.exit_code, 1);
  ASSERT_TRUE(h.capstan({"apply", "-f", "examples"}).status.success());
  auto badvar = h.capstan({"run", "shell_demo", "--set", "colour=red"});
  EXPECT_EQ(badvar.status.exit_code, 2);
  EXPECT_NE(badvar.err.find("no runtime input is named 'colour'"), std::string::npos) << badvar.err;
  EXPECT_EQ(h.capstan({"run"}).status.exit_code, 2);
  EXPECT_EQ(h.capstan({"frobnicate"}).status.exit_code, 2);
  EXPECT_EQ(h.capstan({"apply", "-f", "no/such/file.yaml"}).status.exit_code, 2);

  // A failing step: exit 1 with the step's reason.
  std::string failing = read_file(source_dir() / "examples" / "shell-pipeline.yaml");
  failing.replace(failing.find("identifier: shell_demo"), 22, "identifier: failing");
  failing.replace(failing.find("echo \"computed version $version\""), 32, "exit 3");
  write_file(h.dir() / "failing.yaml", failing);
  ASSERT_TRUE(h.capstan({"apply", "-f", (h.dir() / "failing.yaml").string()}).status.success());
  auto fails = h.capstan({"run", "failing"});
  EXPECT_EQ(fails.status.exit_code, 1) << both(fails);
  EXPECT_NE(fails.out.find("build.version: Failed"), std::string::npos) << fails.out;
  EXPECT_NE(fails.out.find("Failed in"), std::string::npos) << fails.out;

  // A server that is not there.
  auto nowhere = run(
      {binary("capstan").string(), "--server", "http://127.0.0.1:9", "--token", "x", "delegates"},
      {}, 15s);
  EXPECT_EQ(nowhere.status.exit_code, 1);
  EXPECT_NE(nowhere.err.find("cannot reach the coordinator at http://127.0.0.1:9"),
            std::string::npos)
      << nowhere.err;
}

TEST(Cli, APluginThatThrowsOrReturnsGarbageFailsTheRunNotTheDelegate) {
  Home h;
  auto up =
      h.up({"--plugin-dir", plugin_dir().string(), "--plugin-dir", CAPSTAN_FAULTY_PLUGIN_DIR});
  ASSERT_TRUE(up.status.success()) << both(up);
  for (std::string type : {"Throws", "Garbage"}) {
    write_file(h.dir() / "faulty.yaml",
               "pipeline:\n  identifier: faulty\n  name: Faulty\n  stages:\n    - stage:\n"
               "        identifier: s\n        name: S\n        type: Custom\n        spec:\n"
               "          execution:\n            steps:\n              - step:\n"
               "                  type: " +
                   type + "\n                  identifier: x\n                  name: X\n");
    ASSERT_TRUE(h.capstan({"apply", "-f", (h.dir() / "faulty.yaml").string()}).status.success());
    auto r = h.capstan({"run", "faulty"});
    EXPECT_EQ(r.status.exit_code, 1) << both(r);
    EXPECT_NE(r.out.find("s.x: Failed"), std::string::npos) << r.out;
  }
  auto ok = h.capstan({"apply", "-f", "examples"});
  ASSERT_TRUE(ok.status.success());
  EXPECT_EQ(h.capstan({"run", "shell_demo"}).status.exit_code, 0);
}

// The CD example on the embedded stack, as scripts/quickstart runs it: deploy v1.9.0, then
// v2.0.0, then a tag whose pods never become ready, which fails the rollout and rolls the
// stage back to the previous release. The cluster is read with the real kubectl.
TEST(Cli, TheCdExampleDeploysToTheSandboxAndRollsBackAFailingTag) {
  Home h;
  auto up = h.up();
  ASSERT_TRUE(up.status.success()) << both(up);
  EXPECT_NE(up.out.find("K8sRollingDeploy"), std::string::npos) << up.out;
  const std::string kubeconfig = (h.dir().path() / "home" / "sandbox" / "kubeconfig").string();
  auto kubectl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", kubeconfig};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {{"HOME", h.dir().path().string()}}, 30s);
  };
  auto image = [&] {
    auto r = kubectl(
        {"get", "deployment", "myapp", "-o", "jsonpath={.spec.template.spec.containers[0].image}"});
    EXPECT_TRUE(r.status.success()) << both(r);
    return r.out;
  };

  auto apply = h.capstan({"apply", "-f", "examples/cd/"});
  ASSERT_TRUE(apply.status.success()) << both(apply);
  EXPECT_NE(apply.out.find("service/myapp created"), std::string::npos) << apply.out;
  EXPECT_NE(apply.out.find("infrastructureDefinition/sandbox_default created"), std::string::npos)
      << apply.out;
  EXPECT_NE(apply.out.find("pipeline/cd_deploy created"), std::string::npos) << apply.out;

  auto first = h.capstan({"run", "cd_deploy", "--set", "tag=v1.9.0"}, 180s);
  ASSERT_EQ(first.status.exit_code, 0) << both(first);
  EXPECT_EQ(image(), "myorg/myapp:v1.9.0");

  auto second = h.capstan({"run", "cd_deploy", "--set", "tag=v2.0.0"}, 180s);
  ASSERT_EQ(second.status.exit_code, 0) << both(second);
  EXPECT_NE(second.out.find("deploy.rollout: Succeeded"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("deploy.apply_configmap: Succeeded"), std::string::npos) << second.out;
  EXPECT_EQ(image(), "myorg/myapp:v2.0.0");
  auto settings = kubectl({"get", "configmap", "myapp-settings", "-o", "jsonpath={.data.image}"});
  EXPECT_EQ(settings.out, "myorg/myapp:v2.0.0") << both(settings);
  auto ready = kubectl({"get", "deployment", "myapp", "-o", "jsonpath={.status.readyReplicas}"});
  EXPECT_EQ(ready.out, "2") << both(ready);

  auto failing = h.capstan({"run", "cd_deploy", "--set", "tag=crashloop"}, 240s);
  EXPECT_EQ(failing.status.exit_code, 1) << both(failing);
  EXPECT_NE(failing.out.find("deploy.rollout: Failed"), std::string::npos) << failing.out;
  EXPECT_NE(failing.out.find("deploy.rollback: Succeeded"), std::string::npos) << failing.out;
  EXPECT_EQ(image(), "myorg/myapp:v2.0.0");
  ready = kubectl({"get", "deployment", "myapp", "-o", "jsonpath={.status.readyReplicas}"});
  EXPECT_EQ(ready.out, "2") << both(ready);
}

// The GitOps part of the quickstart, run as scripts/quickstart runs it (scripts/quickstart-gitops)
// on a stack of its own: a release repo in the home, an ApplicationSet generating guestbook-dev
// and guestbook-prod, the PR pipeline taking prod to v2.0.0, a scale healed by the agent, and a
// revert pull request taking prod back to v1.9.0. The script checks every phase itself; the
// test reads the end state again with kubectl and the CLI, then runs the script a second time.
TEST(Cli, TheGitOpsQuickstartSyncsPromotesHealsAndReverts) {
  Home h;
  auto up = h.up();
  ASSERT_TRUE(up.status.success()) << both(up);
  const fs::path home = h.dir().path() / "home";
  auto quickstart = [&] {
    return run({(source_dir() / "scripts" / "quickstart-gitops").string()},
               {{"HOME", h.dir().path().string()},
                {"NO_COLOR", "1"},
                {"CAPSTAN_HOME", home.string()},
                {"CAPSTAN_BUILD_DIR", bin_dir().parent_path().string()}},
               420s, source_dir().string());
  };
  auto first = quickstart();
  ASSERT_EQ(first.status.exit_code, 0) << both(first);
  EXPECT_NE(first.out.find("applicationSet/guestbook created"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("deploy.mergePR: Succeeded"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("revert.revertPR: Succeeded"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("myorg/guestbook:v2.0.0"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("deployment.apps/guestbook scaled"), std::string::npos) << first.out;

  const std::string kubeconfig = (home / "sandbox" / "kubeconfig").string();
  auto deployment = [&](const std::string& ns) {
    auto r = run({"kubectl", "--kubeconfig", kubeconfig, "get", "deployment", "guestbook", "-n", ns,
                  "-o",
                  "jsonpath={.spec.template.spec.containers[0].image} {.spec.replicas} "
                  "{.status.availableReplicas}"},
                 {{"HOME", h.dir().path().string()}}, 30s);
    EXPECT_TRUE(r.status.success()) << both(r);
    return r.out;
  };
  EXPECT_EQ(deployment("guestbook-dev"), "myorg/guestbook:v1.9.0 2 2");
  EXPECT_EQ(deployment("guestbook-prod"), "myorg/guestbook:v1.9.0 2 2");

  // Two pull requests, both merged: the update and its revert.
  auto prs = h.capstan({"prs", "list", "-o", "json"});
  ASSERT_TRUE(prs.status.success()) << both(prs);
  auto items = json::parse(prs.out);
  ASSERT_EQ(items.size(), 2u) << prs.out;
  for (const auto& pr : items) EXPECT_EQ(pr["state"], "merged") << pr.dump(2);

  // prod synced three revisions and healed the scale in between: at least four syncs.
  auto history = h.capstan({"apps", "history", "guestbook-prod", "-o", "json"});
  ASSERT_TRUE(history.status.success()) << both(history);
  EXPECT_GE(json::parse(history.out).size(), 4u) << history.out;

  // Safe to run again: nothing to reset, nothing new to apply, the same flow once more.
  auto again = quickstart();
  ASSERT_EQ(again.status.exit_code, 0) << both(again);
  EXPECT_NE(again.out.find("applicationSet/guestbook unchanged"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("service/guestbook unchanged"), std::string::npos) << again.out;
  EXPECT_EQ(deployment("guestbook-prod"), "myorg/guestbook:v1.9.0 2 2");
}

} // namespace
} // namespace capstan::testing
