// The ShellScript step through the real shell.so, loaded by the plugin host.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "capstan/delegate/plugin_host.h"
#include "capstan/testing/task_recorder.h"
#include "capstan/testing/testing.h"

namespace capstan::delegate {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using plugin::v1::StepRequest;
using plugin::v1::StepResult;
using ::testing::HasSubstr;
using testing::Recorder;
using testing::TempDir;

class ShellScriptTest : public ::testing::Test {
protected:
  ShellScriptTest() : host_(json::object(), state_.path(), "d1") {
    host_.load({testing::plugin_dir()});
  }

  static json spec(const std::string& script, const std::string& shell = "Bash") {
    return {{"shell", shell},
            {"onDelegate", true},
            {"source", {{"type", "Inline"}, {"spec", {{"script", script}}}}}};
  }

  StepResult run(const json& spec, Recorder& rec, std::uint64_t timeout_ms = 0) {
    StepRequest r;
    r.set_execution_id("exec-1");
    r.set_task_id("task-1");
    r.set_attempt(1);
    r.set_step_type("ShellScript");
    r.set_step_identifier("script");
    r.set_step_name("Script");
    r.set_spec_json(spec.dump());
    r.set_work_dir(work_.path().string());
    r.set_timeout_ms(timeout_ms);
    return host_.execute(r, rec.callbacks());
  }

  TempDir state_{"shell-state"};
  TempDir work_{"shell-work"};
  PluginHost host_;
};

TEST_F(ShellScriptTest, IsAnnouncedWithItsSchema) {
  ASSERT_TRUE(host_.rejections().empty()) << host_.rejections()[0].reason;
  // The plugin folder holds every bundled plugin; the shell plugin provides one step type.
  std::vector<StepTypeInfo> shell;
  for (const auto& t : host_.step_types()) {
    if (t.plugin == "shell") shell.push_back(t);
  }
  ASSERT_EQ(shell.size(), 1u);
  EXPECT_EQ(shell[0].type, "ShellScript");
  EXPECT_EQ(shell[0].spec_schema["properties"]["shell"]["enum"], json::array({"Bash", "Sh"}));
}

TEST_F(ShellScriptTest, StreamsStdoutAndStderrLineByLineInTheWorkFolder) {
  Recorder rec;
  auto r = run(spec("echo one\necho two >&2\npwd\nprintf 'no newline'"), rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  auto info = rec.lines(CAPSTAN_LOG_INFO);
  EXPECT_THAT(info, ::testing::Contains("one"));
  EXPECT_THAT(info, ::testing::Contains(work_.path().string()));
  EXPECT_THAT(info, ::testing::Contains("no newline"));
  EXPECT_EQ(rec.lines(CAPSTAN_LOG_ERROR), std::vector<std::string>{"two"});
}

TEST_F(ShellScriptTest, BashAndShAreEachTheShellAsked) {
  Recorder bash;
  ASSERT_EQ(run(spec("echo \"bash=${BASH_VERSION:+yes}\""), bash).status(),
            StepResult::STATUS_SUCCEEDED);
  EXPECT_TRUE(bash.saw("bash=yes"));
  Recorder sh;
  ASSERT_EQ(run(spec("echo \"bash=${BASH_VERSION:+yes}\"", "Sh"), sh).status(),
            StepResult::STATUS_SUCCEEDED)
      << sh.all_text();
  EXPECT_THAT(sh.lines(CAPSTAN_LOG_INFO), ::testing::Contains("bash="));
}

TEST_F(ShellScriptTest, EnvironmentVariablesReachTheScriptAndSecretsAreMasked) {
  json s = spec("echo \"$GREETING $COUNT ${#TOKEN}\"");
  s["environmentVariables"] = {{{"name", "GREETING"}, {"type", "String"}, {"value", "hello"}},
                               {{"name", "COUNT"}, {"type", "Number"}, {"value", 3}},
                               {{"name", "TOKEN"}, {"type", "Secret"}, {"value", "hunter2"}}};
  Recorder rec;
  auto r = run(s, rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(rec.saw("hello 3 7")) << rec.all_text();
  EXPECT_EQ(rec.masks, std::vector<std::string>{"hunter2"});
}

TEST_F(ShellScriptTest, OutputVariablesAreExportedFromScriptVariables) {
  json s = spec("plain=bar\nexport EXPORTED=qux\nmulti=\"line1\nline2\"\nempty=\"\"\n"
                "token=abc123\n");
  s["outputVariables"] = {{{"name", "plain"}, {"type", "String"}, {"value", "plain"}},
                          {{"name", "exported"}, {"type", "String"}, {"value", "EXPORTED"}},
                          {{"name", "multi"}, {"type", "String"}, {"value", "multi"}},
                          {{"name", "empty"}, {"type", "String"}, {"value", "empty"}},
                          {{"name", "unset"}, {"type", "String"}, {"value", "never_set"}},
                          {{"name", "token"}, {"type", "Secret"}, {"value", "token"}}};
  Recorder rec;
  auto r = run(s, rec);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message() << rec.all_text();
  EXPECT_EQ(rec.outputs, (std::map<std::string, std::string>{{"plain", "bar"},
                                                             {"exported", "qux"},
                                                             {"multi", "line1\nline2"},
                                                             {"empty", ""},
                                                             {"unset", ""},
                                                             {"token", "abc123"}}));
  EXPECT_EQ(rec.masks, std::vector<std::string>{"abc123"});
  EXPECT_THAT(rec.lines(CAPSTAN_LOG_WARN),
              ::testing::Contains("output variable unset: the script did not set never_set; "
                                  "exporting an empty value"));
}

TEST_F(ShellScriptTest, OutputVariablesSurviveAnEarlyExitAndWorkUnderSh) {
  for (const char* shell : {"Bash", "Sh"}) {
    json s = spec("version=2.0.1\nif true; then exit 0; fi\nversion=never", shell);
    s["outputVariables"] = {{{"name", "version"}, {"type", "String"}, {"value", "version"}}};
    Recorder rec;
    auto r = run(s, rec);
    ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << shell << r.message();
    EXPECT_EQ(rec.outputs["version"], "2.0.1") << shell;
  }
}

TEST_F(ShellScriptTest, NonZeroExitFailsTheStepAndExportsNothing) {
  json s = spec("x=1\necho about to fail\nexit 3");
  s["outputVariables"] = {{{"name", "x"}, {"type", "String"}, {"value", "x"}}};
  Recorder rec;
  auto r = run(s, rec);
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_UNKNOWN);
  EXPECT_EQ(r.message(), "Shell script failed: exit code 3");
  EXPECT_TRUE(rec.outputs.empty());
  EXPECT_TRUE(rec.saw("about to fail"));
}

TEST_F(ShellScriptTest, SetEStopsAtTheFirstFailingCommand) {
  Recorder rec;
  auto r = run(spec("set -e\nfalse\necho never"), rec);
  EXPECT_EQ(r.message(), "Shell script failed: exit code 1");
  EXPECT_FALSE(rec.saw("never"));
}

TEST_F(ShellScriptTest, ErrorsPointAtTheUsersOwnLineNumbers) {
  Recorder rec;
  auto r = run(spec("echo ok\nno_such_command_xyz\n"), rec);
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_THAT(rec.all_text(),
              HasSubstr("script.sh: line 2: no_such_command_xyz: command not found"));
}

TEST_F(ShellScriptTest, TimeoutKillsTheWholeProcessGroup) {
  Recorder rec;
  auto r = run(spec("sleep 300 &\necho $! > bg.pid\necho started\nsleep 300"), rec, 2000);
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_TIMEOUT);
  EXPECT_THAT(r.message(), HasSubstr("timed out after 2s"));
  ASSERT_TRUE(rec.saw("started"));
  pid_t bg = std::stoi(testing::read_file(work_.path() / "bg.pid"));
  EXPECT_TRUE(testing::wait_until([&] { return !testing::process_alive(bg); })) << "pid " << bg;
}

TEST_F(ShellScriptTest, CancellationKillsTheWholeProcessGroup) {
  Recorder rec;
  std::thread canceller([&] {
    testing::wait_until([&] { return rec.saw("started"); });
    rec.cancel = true;
  });
  auto r = run(spec("sleep 300 &\necho $! > bg.pid\necho started\nwait"), rec);
  canceller.join();
  EXPECT_EQ(r.status(), StepResult::STATUS_CANCELLED) << r.message();
  pid_t bg = std::stoi(testing::read_file(work_.path() / "bg.pid"));
  EXPECT_TRUE(testing::wait_until([&] { return !testing::process_alive(bg); })) << "pid " << bg;
}

TEST_F(ShellScriptTest, HarnessFieldsOutsideTheSubsetAreRefusedClearly) {
  Recorder rec;
  json s = spec("echo");
  s["shell"] = "PowerShell";
  auto r = run(s, rec);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(),
              HasSubstr(R"(/shell: must be one of "Bash", "Sh", got "PowerShell" (enum))"));

  s = spec("echo");
  s["source"]["type"] = "Harness";
  EXPECT_THAT(run(s, rec).message(),
              HasSubstr(R"(/source/type: must be one of "Inline", got "Harness" (enum))"));

  s = spec("echo");
  s["outputVariables"] = {{{"name", "out"}, {"type", "String"}, {"value", "my-var"}}};
  EXPECT_THAT(run(s, rec).message(),
              HasSubstr(R"(/outputVariables/0/value: must match the pattern)"));

  s = spec("echo");
  s["enviromentVariables"] = json::array();
  EXPECT_THAT(run(s, rec).message(), HasSubstr("/enviromentVariables: unknown property"));

  s = spec("echo");
  s["onDelegate"] = false;
  r = run(s, rec);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("onDelegate: false (running the script on a remote host) "
                                     "is not supported"));
}

TEST_F(ShellScriptTest, OversizedOutputVariableFailsTheStep) {
  json s = spec("big=$(head -c 600000 /dev/zero | tr '\\0' x)");
  s["outputVariables"] = {{{"name", "big"}, {"type", "String"}, {"value", "big"}}};
  Recorder rec;
  auto r = run(s, rec);
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.message(), "output variable big is 600000 bytes; the limit is 524288 (512 KiB)");
}

TEST_F(ShellScriptTest, MissingWorkFolderIsAClearFailure) {
  Recorder rec;
  StepRequest r;
  r.set_step_type("ShellScript");
  r.set_step_identifier("script");
  r.set_spec_json(spec("echo hi").dump());
  r.set_work_dir((work_.path() / "gone").string());
  auto result = host_.execute(r, rec.callbacks());
  EXPECT_EQ(result.status(), StepResult::STATUS_FAILED);
  EXPECT_THAT(result.message(), HasSubstr("cannot start the script: "));
  EXPECT_THAT(result.message(), HasSubstr("gone"));
}

TEST_F(ShellScriptTest, WithoutAWorkFolderItRunsInAPrivateOneRemovedAfterwards) {
  Recorder rec;
  StepRequest r;
  r.set_step_type("ShellScript");
  r.set_step_identifier("script");
  r.set_spec_json(spec("pwd").dump());
  auto result = host_.execute(r, rec.callbacks());
  ASSERT_EQ(result.status(), StepResult::STATUS_SUCCEEDED) << result.message();
  const fs::path runs = state_.path() / "shell" / "runs";
  auto info = rec.lines(CAPSTAN_LOG_INFO);
  ASSERT_GE(info.size(), 2u);
  EXPECT_EQ(info[1].rfind(runs.string(), 0), 0u) << info[1];
  EXPECT_TRUE(fs::is_empty(runs)); // script, wrapper and folder are gone
}

TEST_F(ShellScriptTest, StepsRunConcurrently) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      json s = spec("v=" + std::to_string(i) + "\necho run $v");
      s["outputVariables"] = {{{"name", "v"}, {"type", "String"}, {"value", "v"}}};
      Recorder rec;
      if (run(s, rec).status() == StepResult::STATUS_SUCCEEDED &&
          rec.outputs["v"] == std::to_string(i) && rec.saw("run " + std::to_string(i))) {
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
}

} // namespace
} // namespace capstan::delegate
