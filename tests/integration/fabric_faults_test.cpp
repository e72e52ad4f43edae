// The task fabric under faults, with real processes on loopback: delegates and the coordinator
// killed mid-task, drains, aborts, timeouts on both sides, the persistent queue, slots.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "stack.h"

namespace capstan::testing {
namespace {

using nlohmann::json;

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// A one-stage pipeline; `steps` is the YAML of its step list (indented for the list).
std::string pipeline(const std::string& id, const std::string& steps,
                     const std::string& extra = "") {
  return "pipeline:\n  identifier: " + id + "\n  name: " + id + "\n" + extra +
         "  stages:\n    - stage:\n        identifier: s\n        name: S\n        type: Custom\n"
         "        spec:\n          execution:\n            steps:\n" +
         steps;
}

std::string shell_step(const std::string& id, const std::string& script,
                       const std::string& extra = "", const std::string& timeout = "2m") {
  std::string indented;
  std::istringstream in(script);
  for (std::string line; std::getline(in, line);)
    indented += "                          " + line + "\n";
  return "              - step:\n                  type: ShellScript\n                  "
         "identifier: " +
         id + "\n                  name: " + id + "\n                  timeout: " + timeout + "\n" +
         extra +
         "                  spec:\n                    shell: Bash\n                    source:\n"
         "                      type: Inline\n                      spec:\n"
         "                        script: |\n" +
         indented;
}

std::string typed_step(const std::string& id, const std::string& type,
                       const std::string& extra = "") {
  return "              - step:\n                  type: " + type +
         "\n                  identifier: " + id + "\n                  name: " + id + "\n" +
         extra + "                  spec: {}\n";
}

std::string apply(Stack& stack, const TempDir& dir, const std::string& name,
                  const std::string& yaml) {
  write_file(dir / (name + ".yaml"), yaml);
  auto r = stack.apply_file(dir / (name + ".yaml"));
  if (stack.last_status() != 200) throw std::runtime_error("apply failed: " + r.dump());
  return name;
}

std::string start(Stack& stack, const std::string& pipeline_id) {
  auto r = stack.post("/api/v1/pipelines/" + pipeline_id + "/executions", json::object());
  if (stack.last_status() != 201) throw std::runtime_error("run failed: " + r.dump());
  return r["id"];
}

json step_of(Stack& stack, const std::string& id, std::size_t index = 0) {
  return stack.get("/api/v1/executions/" + id)["stages"][0]["steps"][index];
}

json delegate_named(Stack& stack, const std::string& name) {
  auto all = stack.get("/api/v1/delegates"); // a local: a temporary's items would dangle
  for (const auto& d : all["items"]) {
    if (d["name"] == name) return d;
  }
  return nullptr;
}

std::filesystem::path faulty_dir() {
  return CAPSTAN_FAULTY_PLUGIN_DIR;
}

TEST(FabricFaults, DelegateKilledMidTaskFailsItOrMovesARetrySafeStep) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& alpha = stack.start_delegate("alpha", {plugin_dir(), faulty_dir()}, 1);
  ASSERT_TRUE(stack.wait_for_delegates(1));

  // Not safe to retry: the step fails with "delegate lost" and the execution ends.
  apply(stack, dir, "long", pipeline("long", shell_step("work", "echo working\nsleep 60")));
  auto id = start(stack, "long");
  ASSERT_TRUE(wait_until([&] { return stack.logs(id).find("working") != std::string::npos; }));
  alpha.child().signal(SIGKILL);
  auto e = stack.wait_for_end(id);
  EXPECT_EQ(e["status"], "Failed");
  std::string message = e["stages"][0]["steps"][0]["message"];
  EXPECT_NE(message.find("delegate lost: alpha"), std::string::npos) << e.dump(2);
  EXPECT_EQ(e["stages"][0]["steps"][0]["errorType"], "DelegateProvisioning");

  // Safe to retry: the step moves to another delegate and the execution completes.
  auto& beta = stack.start_delegate("beta", {plugin_dir(), faulty_dir()}, 1);
  ASSERT_TRUE(stack.wait_for_delegates(1));
  apply(stack, dir, "nap", pipeline("nap", typed_step("nap", "RetrySafeNap")));
  auto nap = start(stack, "nap");
  ASSERT_TRUE(
      wait_until([&] { return stack.logs(nap).find("nap on attempt 1") != std::string::npos; }));
  stack.start_delegate("gamma", {plugin_dir(), faulty_dir()}, 1);
  ASSERT_TRUE(stack.wait_for_delegates(2));
  beta.child().signal(SIGKILL);
  auto moved = stack.wait_for_end(nap);
  EXPECT_EQ(moved["status"], "Succeeded") << moved.dump(2);
  const auto& step = moved["stages"][0]["steps"][0];
  EXPECT_EQ(step["attempt"], 2);
  EXPECT_EQ(step["delegate"], "gamma");
  std::string logs = stack.logs(nap);
  EXPECT_NE(logs.find("delegate lost: beta"), std::string::npos) << logs;
  EXPECT_NE(logs.find("nap on attempt 2"), std::string::npos) << logs;
}

TEST(FabricFaults, ALateResultFromAFencedAttemptIsIgnored) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& beta = stack.start_delegate("beta", {plugin_dir(), faulty_dir()}, 1);
  auto& gamma = stack.start_delegate("gamma", {plugin_dir(), faulty_dir()}, 1);
  ASSERT_TRUE(stack.wait_for_delegates(2));
  apply(stack, dir, "nap", pipeline("nap", typed_step("nap", "RetrySafeNap")));
  auto id = start(stack, "nap");
  ASSERT_TRUE(
      wait_until([&] { return stack.logs(id).find("nap on attempt 1") != std::string::npos; }));
  std::string first = step_of(stack, id)["delegate"];
  auto& frozen = first == "beta" ? beta : gamma;
  // Frozen, not dead: the coordinator loses it and moves the step; thawed, it comes back with
  // attempt 1 still in hand and reports on it while attempt 2 runs.
  frozen.child().signal(SIGSTOP);
  ASSERT_TRUE(
      wait_until([&] { return step_of(stack, id)["attempt"] == 2; }, std::chrono::seconds(15)));
  frozen.child().signal(SIGCONT);
  EXPECT_TRUE(frozen.wait_for_log("attempt 1: STATUS_", std::chrono::seconds(15))) << frozen.log();
  // Back, it reported attempt 1 as running; the coordinator told it to stop that attempt.
  EXPECT_NE(frozen.log().find("attempt 1: cancel requested"), std::string::npos) << frozen.log();
  auto e = stack.wait_for_end(id);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  const auto& step = e["stages"][0]["steps"][0];
  EXPECT_EQ(step["attempt"], 2);
  EXPECT_NE(step["delegate"], first);
  auto logs = stack.logs(id);
  EXPECT_EQ(count(logs, "nap on attempt 2"), 1u) << logs;
}

TEST(FabricFaults, CoordinatorKilledMidPipelineResumesWithoutRunningAStepTwiceOrLosingLogs) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha", {plugin_dir()}, 2);
  ASSERT_TRUE(stack.wait_for_delegates(1));
  auto counter = (dir / "counter").string();
  std::string steps;
  for (int i = 1; i <= 5; ++i) {
    steps +=
        shell_step("s" + std::to_string(i), "echo s" + std::to_string(i) + " >> " + counter +
                                                "\nfor n in $(seq 1 10); do echo s" +
                                                std::to_string(i) + " line $n; sleep 0.1; done");
  }
  apply(stack, dir, "counted", pipeline("counted", steps));
  auto id = start(stack, "counted");
  // Killed three times while steps run and print; restarted after a pause in which the running
  // step keeps printing.
  for (int round = 0; round < 3; ++round) {
    std::string marker = "s" + std::to_string(round + 2) + " line 3";
    ASSERT_TRUE(wait_until([&] { return stack.logs(id).find(marker) != std::string::npos; },
                           std::chrono::seconds(40)))
        << marker << "\n"
        << stack.logs(id);
    stack.kill_coordinator();
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    stack.start_coordinator();
  }
  auto e = stack.wait_for_end(id);
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2);
  EXPECT_EQ(read_file(counter), "s1\ns2\ns3\ns4\ns5\n") << "a step ran twice or not at all";
  std::string logs = stack.logs(id);
  for (int i = 1; i <= 5; ++i) {
    for (int n = 1; n <= 10; ++n) {
      std::string line = "s" + std::to_string(i) + " line " + std::to_string(n) + "\n";
      EXPECT_EQ(count(logs, "| " + line), 1u) << line << logs;
    }
  }
}

// Runs `sql` on the stopped coordinator's database as a hand edit with sqlite3 would; it must
// change one row.
void edit_store(const TempDir& dir, const std::string& sql) {
  const auto file = dir.path() / "coordinator" / "capstan.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_free(error);
  EXPECT_EQ(sqlite3_changes(db), 1);
  sqlite3_close(db);
}

// An execution whose stored stages and steps were damaged while the coordinator was down does
// not keep it from starting: that execution ends as Failed, saying why, its row otherwise kept,
// and the others resume.
TEST(FabricFaults, AnExecutionDamagedInTheStoreFailsAloneAndTheOthersResume) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha", {plugin_dir()}, 2);
  ASSERT_TRUE(stack.wait_for_delegates(1));
  apply(stack, dir, "slow", pipeline("slow", shell_step("wait", "sleep 2\necho done")));
  auto kept = start(stack, "slow");
  auto damaged = start(stack, "slow");
  ASSERT_TRUE(wait_until(
      [&] {
        return step_of(stack, kept)["status"] == "Running" &&
               step_of(stack, damaged)["status"] == "Running";
      },
      std::chrono::seconds(20)));
  stack.kill_coordinator();
  edit_store(dir, "UPDATE executions SET children = x'07' WHERE id = '" + damaged + "'");
  stack.start_coordinator();
  auto e = stack.wait_for_end(kept);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  bool listed = false;
  const auto list = stack.get("/api/v1/executions?pipeline=slow");
  for (const auto& item : list["items"]) {
    if (item["id"] != damaged) continue;
    listed = true;
    EXPECT_EQ(item["status"], "Failed") << item.dump(2);
    EXPECT_NE(item.dump().find("could not resume this execution"), std::string::npos)
        << item.dump(2);
  }
  EXPECT_TRUE(listed) << "the damaged execution left the list: " << list.dump(2);
  // Its own page names the damage instead of answering with a made-up record.
  stack.get("/api/v1/executions/" + damaged);
  EXPECT_EQ(stack.last_status(), 500);
}

// A value damaged on disk after its run ended (and an application's status): the lists keep
// answering with the row marked, in the API and the CLI; the run's own page names the column; no
// answer and no log line quotes the stored text.
TEST(FabricFaults, AValueDamagedOnDiskIsNamedAndTheListKeepsAnswering) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha", {plugin_dir()}, 2);
  ASSERT_TRUE(stack.wait_for_delegates(1));
  apply(stack, dir, "quick", pipeline("quick", shell_step("say", "echo done")));
  const auto app = stack.apply_text(
      "app.yaml", "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\n"
                  "spec:\n  source:\n    repoURL: https://git.example/web.git\n"
                  "    targetRevision: main\n    path: web\n  destination:\n"
                  "    server: https://cluster.example\n    namespace: demo\n");
  ASSERT_EQ(stack.last_status(), 200) << app.dump(2);
  const auto kept = start(stack, "quick");
  const auto damaged = start(stack, "quick");
  EXPECT_EQ(stack.wait_for_end(kept)["status"], "Succeeded");
  EXPECT_EQ(stack.wait_for_end(damaged)["status"], "Succeeded");
  stack.kill_coordinator();
  const std::string secret = "hunter2";
  edit_store(dir, R"(UPDATE executions SET state = '{"secret-ish": ")" + secret +
                      "\"' WHERE id = '" + damaged + "'");
  edit_store(dir, R"(UPDATE gitops_apps SET status = '{"secret-ish": ")" + secret +
                      "\"' WHERE name = 'web'");
  edit_store(dir, R"(UPDATE audit SET details = '{"secret-ish": ")" + secret +
                      "\"' WHERE seq = (SELECT MIN(seq) FROM audit)");
  stack.start_coordinator();

  const auto apps = stack.get("/api/v1/apps");
  ASSERT_EQ(stack.last_status(), 200) << apps.dump(2);
  ASSERT_EQ(apps["items"].size(), 1U) << apps.dump(2);
  EXPECT_EQ(apps["items"][0].value("unreadable", ""),
            "gitops_apps.status of web does not parse as JSON")
      << apps.dump(2);
  EXPECT_EQ(apps.dump().find(secret), std::string::npos) << apps.dump(2);

  const auto list = stack.get("/api/v1/executions?pipeline=quick");
  ASSERT_EQ(stack.last_status(), 200) << list.dump(2);
  ASSERT_EQ(list["items"].size(), 2U) << list.dump(2);
  for (const auto& item : list["items"]) {
    if (item["id"] == kept) {
      EXPECT_FALSE(item.contains("unreadable")) << item.dump(2);
      continue;
    }
    EXPECT_EQ(item["status"], "Succeeded") << item.dump(2);
    EXPECT_EQ(item.value("unreadable", ""),
              "executions.state of " + damaged + " does not parse as JSON (24 bytes stored)")
        << item.dump(2);
  }
  EXPECT_EQ(list.dump().find(secret), std::string::npos) << list.dump(2);

  const auto one = stack.get("/api/v1/executions/" + damaged);
  EXPECT_EQ(stack.last_status(), 500);
  EXPECT_EQ(one["error"]["code"], "StoredValueDamaged") << one.dump(2);
  const std::string message = one["error"].value("message", "");
  EXPECT_NE(message.find("executions.state of " + damaged), std::string::npos) << message;
  EXPECT_EQ(one.dump().find(secret), std::string::npos) << one.dump(2);
  stack.get("/api/v1/executions/" + kept);
  EXPECT_EQ(stack.last_status(), 200) << "the other run reads as before";

  const auto cli = stack.cli({"executions", "list", "--pipeline", "quick"});
  EXPECT_TRUE(cli.status.success()) << cli.out << cli.err;
  EXPECT_NE(cli.out.find("UNREADABLE: executions.state of " + damaged), std::string::npos)
      << cli.out;
  EXPECT_NE(cli.out.find(kept), std::string::npos) << cli.out;
  EXPECT_NE(cli.err.find("1 execution holds a stored value that cannot be read"), std::string::npos)
      << cli.err;
  EXPECT_EQ((cli.out + cli.err).find(secret), std::string::npos) << cli.out << cli.err;

  // The other lists mark such a row too, and say why after the table.
  const auto audit = stack.cli({"audit", "--limit", "500"});
  EXPECT_TRUE(audit.status.success()) << audit.out << audit.err;
  EXPECT_NE(audit.out.find("(unreadable)"), std::string::npos) << audit.out;
  EXPECT_NE(audit.err.find("unreadable: audit.details of entry "), std::string::npos) << audit.err;
  EXPECT_NE(audit.err.find("1 audit entry holds a stored value that cannot be read"),
            std::string::npos)
      << audit.err;
  const auto apps_cli = stack.cli({"apps", "list"});
  EXPECT_TRUE(apps_cli.status.success()) << apps_cli.out << apps_cli.err;
  EXPECT_NE(apps_cli.out.find("Unreadable"), std::string::npos) << apps_cli.out;
  EXPECT_NE(apps_cli.err.find("unreadable: gitops_apps.status of web"), std::string::npos)
      << apps_cli.err;
  EXPECT_EQ((audit.out + audit.err + apps_cli.out + apps_cli.err).find(secret), std::string::npos)
      << audit.out << audit.err << apps_cli.out << apps_cli.err;

  const auto log = stack.coordinator().log();
  EXPECT_NE(log.find("executions.state of " + damaged), std::string::npos) << log;
  EXPECT_EQ(log.find(secret), std::string::npos) << log;
}

TEST(FabricFaults, RevokedTokenDropsTheDelegateAtOnceAndRefusesItsReconnects) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto created = stack.post("/api/v1/tokens", {{"name", "edge"}});
  ASSERT_EQ(stack.last_status(), 201) << created.dump();
  std::string token = created["token"];
  auto& edge = stack.start_delegate("edge", {plugin_dir()}, 1, {"--token", token});
  stack.start_delegate("core");
  ASSERT_TRUE(stack.wait_for_delegates(2));
  EXPECT_EQ(delegate_named(stack, "edge")["token"], "edge");

  auto revoked = stack.del("/api/v1/tokens/edge");
  ASSERT_EQ(stack.last_status(), 200) << revoked.dump();
  EXPECT_EQ(revoked["droppedSessions"], 1);
  EXPECT_FALSE(delegate_named(stack, "edge")["connected"].get<bool>());
  ASSERT_TRUE(edge.wait_for_log("refused", std::chrono::seconds(10))) << edge.log();
  // It keeps trying and keeps being refused; the other delegate is untouched.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_FALSE(delegate_named(stack, "edge")["connected"].get<bool>());
  EXPECT_TRUE(delegate_named(stack, "core")["connected"].get<bool>());
  EXPECT_TRUE(edge.child().running());
  bool listed = false;
  auto tokens = stack.get("/api/v1/tokens");
  for (const auto& t : tokens["items"]) {
    if (t["name"] == "edge") {
      listed = true;
      EXPECT_TRUE(t["revoked"].get<bool>());
    }
    EXPECT_EQ(t.find("token"), t.end()) << "a token value leaked into the list";
    EXPECT_EQ(t.find("hash"), t.end());
  }
  EXPECT_TRUE(listed);
}

TEST(FabricFaults, TwentyDelegatesWithMixedTagsGetOnlyMatchingTasks) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  std::map<std::string, std::set<std::string>> tags;
  for (int i = 0; i < 20; ++i) {
    char name[8];
    std::snprintf(name, sizeof name, "d%02d", i);
    std::string t = i % 2 == 0 ? "east" : "west";
    if (i % 4 == 0) t += ",gpu";
    std::stringstream ss(t);
    for (std::string tag; std::getline(ss, tag, ',');) tags[name].insert(tag);
    tags[name].insert(name);
    stack.start_delegate(name, {plugin_dir()}, 1, {"--tag", t});
  }
  ASSERT_TRUE(stack.wait_for_delegates(20));
  // Pipeline level: west. Stage 2: east. A step in stage 2: gpu (the step wins, not merged).
  // A step in stage 1 picks one delegate by name.
  std::string yaml =
      "pipeline:\n  identifier: tagged\n  name: tagged\n  delegateSelectors: [west]\n"
      "  stages:\n"
      "    - stage:\n        identifier: one\n        name: one\n        type: Custom\n"
      "        spec:\n          execution:\n            steps:\n" +
      shell_step("a", "echo a") +
      shell_step("b", "echo b", "                  delegateSelectors: [d13]\n") +
      "    - stage:\n        identifier: two\n        name: two\n        type: Custom\n"
      "        delegateSelectors: [east]\n"
      "        spec:\n          execution:\n            steps:\n" +
      shell_step("c", "echo c") +
      shell_step("d", "echo d", "                  delegateSelectors: [gpu]\n");
  apply(stack, dir, "tagged", yaml);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(start(stack, "tagged"));
  std::map<std::string, std::string> wanted = {
      {"one.a", "west"}, {"one.b", "d13"}, {"two.c", "east"}, {"two.d", "gpu"}};
  for (const auto& id : ids) {
    auto e = stack.wait_for_end(id);
    ASSERT_EQ(e["status"], "Succeeded") << e.dump(2);
    for (const auto& stage : e["stages"]) {
      for (const auto& step : stage["steps"]) {
        std::string key =
            stage["identifier"].get<std::string>() + "." + step["identifier"].get<std::string>();
        std::string on = step["delegate"];
        EXPECT_TRUE(tags[on].count(wanted[key])) << key << " ran on " << on;
        if (key == "two.d") {
          EXPECT_FALSE(tags[on].count("west")) << "selectors were merged";
        }
      }
    }
  }
  // A selector no delegate matches fails the step with a clear message, no fallback.
  apply(stack, dir, "nowhere",
        pipeline("nowhere",
                 shell_step("x", "echo x", "                  delegateSelectors: [mars]\n")));
  auto e = stack.wait_for_end(start(stack, "nowhere"));
  EXPECT_EQ(e["status"], "Failed");
  std::string message = e["stages"][0]["steps"][0]["message"];
  EXPECT_NE(message.find("no connected delegate matches delegate selectors [mars]"),
            std::string::npos)
      << message;
}

TEST(FabricFaults, AQueueForABusyDelegateRunsOnItInOrderWhileAnotherIdlesAndANewOneIsUsed) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("busy", {plugin_dir()}, 1, {"--tags", "prod"});
  stack.start_delegate("idle", {plugin_dir()}, 2, {"--tags", "dev"});
  ASSERT_TRUE(stack.wait_for_delegates(2));
  const auto go = (dir / "go").string();
  const std::string prod = "                  delegateSelectors: [prod]\n";
  apply(
      stack, dir, "hold",
      pipeline("hold", shell_step("hold", "while [ ! -e " + go + " ]; do sleep 0.1; done", prod)));
  apply(stack, dir, "quick", pipeline("quick", shell_step("quick", "echo quick", prod)));
  apply(stack, dir, "gpu",
        pipeline("gpu",
                 shell_step("gpu", "echo gpu", "                  delegateSelectors: [gpu]\n")));
  auto hold = start(stack, "hold");
  ASSERT_TRUE(wait_until([&] { return step_of(stack, hold)["status"] == "Running"; }));
  std::vector<std::string> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(start(stack, "quick"));
  // Every queued step says why it waits, while `idle` has free slots none of them can use.
  for (const auto& id : queued) {
    ASSERT_TRUE(wait_until([&] {
      return step_of(stack, id)["message"].get<std::string>().find("waiting for a free slot") !=
             std::string::npos;
    })) << step_of(stack, id).dump(2);
  }
  // A run for a key no delegate matches yet is placed once one connects.
  auto gpu = start(stack, "gpu");
  stack.start_delegate("late", {plugin_dir()}, 1, {"--tags", "gpu"});
  auto g = stack.wait_for_end(gpu);
  EXPECT_EQ(g["status"], "Succeeded") << g.dump(2);
  EXPECT_EQ(g["stages"][0]["steps"][0]["delegate"], "late");
  EXPECT_EQ(step_of(stack, queued[0])["status"], "Queued");

  write_file(go, "");
  EXPECT_EQ(stack.wait_for_end(hold)["status"], "Succeeded");
  std::int64_t last = 0;
  for (const auto& id : queued) {
    auto e = stack.wait_for_end(id);
    ASSERT_EQ(e["status"], "Succeeded") << e.dump(2);
    const auto& step = e["stages"][0]["steps"][0];
    EXPECT_EQ(step["delegate"], "busy") << step.dump(2);
    EXPECT_GE(step["startedAt"].get<std::int64_t>(), last) << "oldest first";
    last = step["startedAt"].get<std::int64_t>();
  }
}

TEST(FabricFaults, SigtermDrainsTheDelegate) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& alpha = stack.start_delegate("alpha", {plugin_dir()}, 2, {"--drain-grace", "30s"});
  ASSERT_TRUE(stack.wait_for_delegates(1));
  apply(stack, dir, "slow",
        pipeline("slow", shell_step("w", "echo started\nsleep 3\necho finished")));
  auto first = start(stack, "slow");
  ASSERT_TRUE(wait_until([&] { return stack.logs(first).find("started") != std::string::npos; }));
  alpha.child().signal(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return delegate_named(stack, "alpha")["status"] == "Draining"; },
                         std::chrono::seconds(5)));
  auto cli = run({binary("capstan").string(), "delegates", "--server", stack.api(), "--token",
                  read_file(dir / "coordinator" / "api-token").substr(0, 64)});
  EXPECT_NE(cli.out.find("Draining"), std::string::npos) << cli.out << cli.err;
  // A new task is not given to the draining delegate: it waits, then goes to a fresh one.
  auto second = start(stack, "slow");
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(step_of(stack, second)["status"], "Queued");
  auto done = stack.wait_for_end(first);
  EXPECT_EQ(done["status"], "Succeeded") << done.dump(2);
  EXPECT_NE(stack.logs(first).find("finished"), std::string::npos);
  EXPECT_TRUE(alpha.child().wait_for(std::chrono::seconds(15)).has_value()) << alpha.log();
  stack.start_delegate("beta");
  auto moved = stack.wait_for_end(second);
  EXPECT_EQ(moved["status"], "Succeeded");
  EXPECT_EQ(moved["stages"][0]["steps"][0]["delegate"], "beta");
}

TEST(FabricFaults, AbortKillsTheRunningShellProcessGroup) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha");
  ASSERT_TRUE(stack.wait_for_delegates(1));
  auto pid_file = (dir / "child.pid").string();
  apply(stack, dir, "stuck",
        pipeline("stuck", shell_step("w", "sleep 300 &\necho $! > " + pid_file + "\nwait")));
  auto id = start(stack, "stuck");
  ASSERT_TRUE(wait_until([&] { return !read_file(pid_file).empty(); }));
  pid_t child = std::stoi(read_file(pid_file));
  ASSERT_EQ(::kill(child, 0), 0);
  auto r = stack.post("/api/v1/executions/" + id + "/abort", json::object());
  ASSERT_EQ(stack.last_status(), 200) << r.dump();
  auto e = stack.wait_for_end(id);
  EXPECT_EQ(e["status"], "Aborted");
  EXPECT_TRUE(wait_until([&] { return ::kill(child, 0) != 0; }, std::chrono::seconds(15)))
      << "the step's background process survived the abort";
  // The slot came back: the delegate runs the next task.
  apply(stack, dir, "quick", pipeline("quick", shell_step("q", "echo quick")));
  EXPECT_EQ(stack.wait_for_end(start(stack, "quick"))["status"], "Succeeded");
}

TEST(FabricFaults, APluginIgnoringItsTimeoutIsAbandonedAndItsSlotFreed) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& alpha =
      stack.start_delegate("alpha", {plugin_dir(), faulty_dir()}, 1, {"--cancel-grace", "1s"});
  ASSERT_TRUE(stack.wait_for_delegates(1));
  apply(stack, dir, "deaf",
        pipeline("deaf", typed_step("deaf", "IgnoresCancel", "                  timeout: 2s\n")));
  auto e = stack.wait_for_end(start(stack, "deaf"));
  EXPECT_EQ(e["status"], "Failed");
  const auto& step = e["stages"][0]["steps"][0];
  EXPECT_EQ(step["errorType"], "Timeout") << step.dump(2);
  EXPECT_NE(step["message"].get<std::string>().find("abandoned"), std::string::npos)
      << step.dump(2);
  // Its only slot is free again.
  apply(stack, dir, "quick", pipeline("quick", shell_step("q", "echo quick")));
  auto next = stack.wait_for_end(start(stack, "quick"));
  EXPECT_EQ(next["status"], "Succeeded");
  EXPECT_EQ(next["stages"][0]["steps"][0]["delegate"], "alpha");
  EXPECT_TRUE(alpha.child().running());
}

TEST(FabricFaults, TheDelegateStopsAShellStepWhenItsTimeoutPassesAndKillsItsProcessGroup) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  // The coordinator's own backstop is far away: what stops the step is the delegate.
  stack.coordinator_flags = {"--timeout-grace", "10m"};
  stack.start_coordinator();
  stack.start_delegate("alpha");
  ASSERT_TRUE(stack.wait_for_delegates(1));
  auto pid_file = (dir / "child.pid").string();
  apply(stack, dir, "slow",
        pipeline("slow",
                 shell_step("w", "sleep 300 &\necho $! > " + pid_file + "\necho waiting\nwait", "",
                            "2s")));
  auto id = start(stack, "slow");
  ASSERT_TRUE(wait_until([&] { return !read_file(pid_file).empty(); }));
  pid_t child = std::stoi(read_file(pid_file));
  auto e = stack.wait_for_end(id);
  EXPECT_EQ(e["status"], "Failed");
  const auto& step = e["stages"][0]["steps"][0];
  EXPECT_EQ(step["errorType"], "Timeout") << step.dump(2);
  std::string message = step["message"];
  EXPECT_NE(message.find("timed out after 2s"), std::string::npos) << message;
  EXPECT_EQ(message.find("did not finish within"), std::string::npos)
      << "the coordinator, not the delegate, ended the step: " << message;
  EXPECT_TRUE(wait_until([&] { return ::kill(child, 0) != 0; }, std::chrono::seconds(10)))
      << "the step's background process outlived its timeout";
  auto logs = stack.logs(id);
  EXPECT_NE(logs.find("[capstan] the step's timeout of 2s passed: the delegate is stopping it"),
            std::string::npos)
      << logs;
}

TEST(FabricFaults, TheCoordinatorFailsAStepWhoseDelegateDoesNotReportPastItsTimeout) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.coordinator_flags = {"--timeout-grace", "1s"};
  stack.start_coordinator();
  // The delegate would wait ten minutes before abandoning the deaf plugin: the coordinator
  // does not wait for it.
  auto& alpha =
      stack.start_delegate("alpha", {plugin_dir(), faulty_dir()}, 1, {"--cancel-grace", "10m"});
  ASSERT_TRUE(stack.wait_for_delegates(1));
  apply(stack, dir, "deaf",
        pipeline("deaf", typed_step("deaf", "IgnoresCancel", "                  timeout: 1s\n")));
  auto e = stack.wait_for_end(start(stack, "deaf"));
  EXPECT_EQ(e["status"], "Failed");
  const auto& step = e["stages"][0]["steps"][0];
  EXPECT_EQ(step["errorType"], "Timeout") << step.dump(2);
  EXPECT_NE(step["message"].get<std::string>().find("did not finish within its timeout of 1.0s"),
            std::string::npos)
      << step.dump(2);
  // The delegate was told to cancel the attempt.
  EXPECT_TRUE(alpha.wait_for_log("cancel requested", std::chrono::seconds(10))) << alpha.log();
}

TEST(FabricFaults, LogLinesWrittenWhileTheCoordinatorIsDownAreKeptUpToTheBufferAndTheGapNoted) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& alpha = stack.start_delegate("alpha", {plugin_dir()}, 1,
                                     {"--log-buffer", "64KiB", "--metrics-port", "0"});
  ASSERT_TRUE(stack.wait_for_delegates(1));
  auto go = (dir / "go").string();
  // About 200 KiB of log, written while the coordinator is away: the last ~64 KiB are kept.
  apply(stack, dir, "chatty",
        pipeline("chatty",
                 shell_step("w", "echo begin\nwhile [ ! -f " + go +
                                     " ]; do sleep 0.05; done\n"
                                     "pad=$(printf 'x%.0s' $(seq 1 80))\n"
                                     "for i in $(seq 1 2000); do echo \"line $i $pad\"; done\n"
                                     "echo end")));
  auto id = start(stack, "chatty");
  ASSERT_TRUE(wait_until([&] { return stack.logs(id).find("begin") != std::string::npos; }));
  // Lines taken before the kill are acknowledged; the acknowledgement has this long to arrive.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stack.kill_coordinator();
  write_file(dir / "go", "");
  ASSERT_TRUE(alpha.wait_for_log("STATUS_SUCCEEDED", std::chrono::seconds(30))) << alpha.log();
  EXPECT_NE(alpha.log().find("the log buffer is full"), std::string::npos) << alpha.log();
  stack.start_coordinator();
  auto e = stack.wait_for_end(id);
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2);
  auto logs = stack.logs(id);
  // The oldest lines went, with a note saying how many; the newest arrived, in order, once.
  auto note = logs.find(" log line(s) of this step were lost");
  ASSERT_NE(note, std::string::npos) << logs;
  auto note_start = logs.rfind("[capstan] ", note) + 10;
  int lost = std::stoi(logs.substr(note_start, note - note_start));
  EXPECT_GT(lost, 0);
  EXPECT_LT(lost, 2000);
  for (int i = 1; i <= 2000; ++i) {
    std::string line = "| line " + std::to_string(i) + " x";
    // The lost ones are the first `lost` lines printed after "begin".
    EXPECT_EQ(count(logs, line), i <= lost ? 0u : 1u) << line;
  }
  EXPECT_NE(logs.find("| end\n"), std::string::npos) << logs;
  // The buffer was emptied once the coordinator took what was kept.
  int port = std::stoi(read_file(dir / "delegate-alpha" / "metrics-port"));
  httplib::Client http("127.0.0.1", port);
  ASSERT_TRUE(wait_until([&] {
    auto m = http.Get("/metrics");
    return m && m->body.find("capstan_delegate_log_buffer_bytes 0\n") != std::string::npos;
  }));
  auto m = http.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("capstan_delegate_log_lines_dropped_total " + std::to_string(lost) + "\n"),
            std::string::npos)
      << m->body;
}

TEST(FabricFaults, QueueTimeoutFailsAStepThatNeverGetsASlot) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  // The first step outlives the second's queue timeout by 4 s, and the second stays queued long
  // enough to be seen so on a loaded machine.
  stack.coordinator_flags = {"--queue-timeout", "4s"};
  stack.start_coordinator();
  stack.start_delegate("alpha", {plugin_dir()}, 1);
  ASSERT_TRUE(stack.wait_for_delegates(1));
  apply(stack, dir, "slow", pipeline("slow", shell_step("w", "sleep 8")));
  auto first = start(stack, "slow");
  ASSERT_TRUE(wait_until([&] { return step_of(stack, first)["status"] == "Running"; }));
  auto second = start(stack, "slow");
  // Queued, and saying why, within the queue timeout (the reason is set on the next timer pass).
  json waiting;
  EXPECT_TRUE(wait_until(
      [&] {
        waiting = step_of(stack, second);
        return waiting["message"].get<std::string>().find("waiting for a free slot") !=
               std::string::npos;
      },
      std::chrono::seconds(4)))
      << waiting.dump(2);
  EXPECT_EQ(waiting["status"], "Queued") << waiting.dump(2);
  auto e = stack.wait_for_end(second);
  EXPECT_EQ(e["status"], "Failed");
  EXPECT_NE(e["stages"][0]["steps"][0]["message"].get<std::string>().find("queue timeout"),
            std::string::npos)
      << e.dump(2);
  EXPECT_EQ(stack.wait_for_end(first)["status"], "Succeeded");
}

TEST(FabricFaults, CreditLimitIsNeverExceeded) {
  TempDir dir("capstan-faults");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& alpha = stack.start_delegate("alpha", {plugin_dir()}, 2);
  ASSERT_TRUE(stack.wait_for_delegates(1));
  apply(stack, dir, "short", pipeline("short", shell_step("w", "sleep 0.5")));
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(start(stack, "short"));
  int most = 0;
  for (const auto& id : ids) {
    while (true) {
      auto d = delegate_named(stack, "alpha");
      most = std::max(most, d["running"].get<int>());
      auto s = stack.get("/api/v1/executions/" + id)["status"];
      if (s != "Running" && s != "Queued") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  EXPECT_LE(most, 2);
  // From the store: at no moment did more than two steps run at once on the delegate.
  std::vector<std::pair<std::int64_t, int>> edges;
  for (const auto& id : ids) {
    auto e = stack.get("/api/v1/executions/" + id);
    ASSERT_EQ(e["status"], "Succeeded");
    const auto& s = e["stages"][0]["steps"][0];
    edges.emplace_back(s["startedAt"].get<std::int64_t>(), 1);
    edges.emplace_back(s["endedAt"].get<std::int64_t>(), -1);
  }
  std::sort(edges.begin(), edges.end());
  int now = 0, peak = 0;
  for (const auto& [t, d] : edges) peak = std::max(peak, now += d);
  EXPECT_LE(peak, 2);
  EXPECT_EQ(count(alpha.log(), "no free slot"), 0u) << alpha.log();
}

} // namespace
} // namespace capstan::testing
