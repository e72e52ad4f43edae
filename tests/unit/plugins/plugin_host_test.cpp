// The plugin host against real plugin libraries: the good echo fixture, each bad fixture, the
// faulty one, and the crashing one (in a child process).
#include "capstan/delegate/plugin_host.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <map>
#include <thread>

#include "capstan/testing/task_recorder.h"
#include "capstan/testing/testing.h"

namespace capstan::delegate {
namespace {

namespace fs = std::filesystem;
using plugin::v1::StepRequest;
using plugin::v1::StepResult;
using ::testing::HasSubstr;
using testing::Recorder;
using ::testing::StartsWith;
using testing::TempDir;

fs::path fixtures(const std::string& group) {
  return fs::path(CAPSTAN_FIXTURE_PLUGIN_DIR) / group;
}

StepRequest request(const std::string& type, const nlohmann::json& spec,
                    const std::string& id = "step1") {
  StepRequest r;
  r.set_execution_id("exec-1");
  r.set_task_id("task-1");
  r.set_attempt(1);
  r.set_step_type(type);
  r.set_step_identifier(id);
  r.set_step_name(id);
  r.set_spec_json(spec.dump());
  return r;
}

std::string reason_for(const PluginHost& host, const std::string& file) {
  for (const auto& r : host.rejections()) {
    if (r.path.filename() == file) return r.reason;
  }
  return "(not rejected)";
}

class PluginHostTest : public ::testing::Test {
protected:
  TempDir state_{"plugin-host"};
};

TEST_F(PluginHostTest, LoadsAGoodPluginAndAnnouncesItsStepTypes) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  EXPECT_TRUE(host.rejections().empty());
  ASSERT_EQ(host.step_types().size(), 2u);
  const auto& echo = host.step_types()[0];
  EXPECT_EQ(echo.type, "Echo");
  EXPECT_EQ(echo.plugin, "echo");
  EXPECT_EQ(echo.plugin_version, "1.2.3");
  EXPECT_EQ(echo.description, "Logs its message and does what its spec asks");
  EXPECT_EQ(echo.spec_schema["required"], nlohmann::json::array({"message"}));
  EXPECT_FALSE(echo.retry_safe);
  EXPECT_EQ(host.step_types()[1].type, "EchoRetrySafe");
  EXPECT_TRUE(host.step_types()[1].retry_safe);
  EXPECT_FALSE(echo.prompt);
  EXPECT_FALSE(host.step_types()[1].prompt);
  // The plugin got a state folder of its own.
  EXPECT_TRUE(fs::is_directory(state_.path() / "echo"));
}

TEST_F(PluginHostTest, RunsAStepThroughEveryCallback) {
  PluginHost host({{"echo", {{"greeting", "hey"}}}}, state_.path(), "d1");
  host.load({fixtures("good")});
  Recorder rec;
  auto req = request("Echo", {{"message", "hi"},
                              {"outputs", {{"color", "blue"}}},
                              {"secretOutputs", {{"token", "s3cr3t"}}},
                              {"progress", 50},
                              {"fromThread", true},
                              {"showContext", true}});
  req.set_context_json(R"({"service":{"identifier":"web"}})");
  req.set_work_dir(state_.path().string());
  StepResult r = host.execute(req, rec.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_EQ(r.message(), "echoed");
  EXPECT_TRUE(rec.saw("hey: hi")) << rec.all_text(); // config reached init, thread logged
  EXPECT_TRUE(rec.saw(R"(context: {"service":{"identifier":"web"}})")) << rec.all_text();
  EXPECT_TRUE(rec.saw("work_dir: " + state_.path().string()));
  EXPECT_EQ(rec.outputs,
            (std::map<std::string, std::string>{{"color", "blue"}, {"token", "s3cr3t"}}));
  EXPECT_EQ(rec.masks, std::vector<std::string>{"s3cr3t"});
  ASSERT_EQ(rec.progress.size(), 1u);
  EXPECT_EQ(rec.progress[0], (std::pair<std::uint32_t, std::string>{50, "halfway"}));
}

TEST_F(PluginHostTest, APluginBuiltForApi10LoadsAndOffersNoReconciler) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("compat"), fixtures("good")});
  EXPECT_TRUE(host.rejections().empty()) << host.rejections().front().reason;
  EXPECT_TRUE(host.reconcilers().empty());
  host.start_reconcilers({});
  EXPECT_TRUE(host.reconcilers().empty());
  plugin::v1::ReconcilerCall call;
  call.set_op(plugin::v1::ReconcilerCall::OP_STATUS);
  call.set_application("demo");
  auto reply = host.reconcile("api-1-0", call);
  EXPECT_FALSE(reply.ok());
  EXPECT_EQ(reply.error(), "no reconciler of plugin 'api-1-0' runs here");
}

TEST_F(PluginHostTest, TheGitopsPluginOffersAReconciler) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({testing::plugin_dir()});
  auto names = host.reconcilers();
  EXPECT_THAT(names, ::testing::Contains("gitops"));
  EXPECT_THAT(names, ::testing::Not(::testing::Contains("shell")));
  host.start_reconcilers({});
  // A call for an application it does not hold fails with the plugin's reason.
  plugin::v1::ReconcilerCall call;
  call.set_op(plugin::v1::ReconcilerCall::OP_SYNC);
  call.set_application("demo");
  auto reply = host.reconcile("gitops", call);
  EXPECT_FALSE(reply.ok());
  EXPECT_EQ(reply.error(), "application 'demo' is not reconciled here");
  // An upsert whose cluster cannot be reached through its connector changes nothing.
  call.set_op(plugin::v1::ReconcilerCall::OP_UPSERT);
  call.set_application_json(R"({"apiVersion":"argoproj.io/v1alpha1","kind":"Application",
    "metadata":{"name":"demo"},"spec":{"source":{"repoURL":"file:///nowhere"},
    "destination":{"name":"c1","namespace":"x"}}})");
  call.set_cluster_json(R"({"identifier":"c1","names":["c1"],"connector":{"identifier":"k",
    "type":"K8sCluster","credential":{"type":"Kubeconfig","kubeconfigPath":"/nonexistent/kc"}}})");
  reply = host.reconcile("gitops", call);
  EXPECT_FALSE(reply.ok());
  EXPECT_THAT(reply.error(), HasSubstr("cluster 'c1': connector 'k'"));
  call.set_op(plugin::v1::ReconcilerCall::OP_STATUS);
  EXPECT_FALSE(host.reconcile("gitops", call).ok());
  host.stop_reconcilers();
}

TEST_F(PluginHostTest, EveryBadPluginIsRefusedWithItsReasonAndTheGoodOneStillServes) {
  TempDir junk("junk-plugins");
  testing::write_file(junk / "not_elf.so", "this is not a shared library\n");
  testing::write_file(junk / "README.txt", "ignored: not a .so\n");
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good"), fixtures("bad"), junk.path(), state_.path() / "missing-folder"});

  EXPECT_THAT(reason_for(host, "bad_major.so"),
              HasSubstr("built for plugin API 2.1 and this delegate speaks 1.1; the major "
                        "versions must be equal"));
  EXPECT_THAT(reason_for(host, "newer_minor.so"),
              HasSubstr("needs plugin API 1.8 but this delegate provides 1.1"));
  EXPECT_THAT(reason_for(host, "no_entry.so"),
              HasSubstr("does not export the symbol capstan_plugin_entry"));
  EXPECT_THAT(reason_for(host, "entry_null.so"),
              HasSubstr("capstan_plugin_entry() returned NULL: the plugin cannot serve a host "
                        "with plugin API 1.1"));
  EXPECT_EQ(reason_for(host, "init_fails.so"),
            "plugin 'init-fails' failed to initialise: cannot reach the license server at "
            "203.0.113.7:443");
  EXPECT_EQ(reason_for(host, "duplicate_step.so"),
            "step type 'Echo' is already provided by plugin 'echo' (" +
                (fixtures("good") / "echo.so").string() + ")");
  EXPECT_THAT(reason_for(host, "schema_not_json.so"),
              StartsWith("plugin 'schema-not-json' step type 'SchemaNotJson': spec_schema is not "
                         "JSON: [json.exception.parse_error.101]"));
  EXPECT_EQ(reason_for(host, "missing_execute.so"),
            "plugin 'missing-execute' leaves required functions NULL: execute");
  EXPECT_THAT(reason_for(host, "short_struct.so"),
              HasSubstr("struct_size is 24 bytes but plugin API 1.1 needs at least"));
  EXPECT_THAT(reason_for(host, "not_elf.so"), StartsWith("cannot load the library: "));
  EXPECT_THAT(reason_for(host, "not_elf.so"), HasSubstr("not_elf.so"));
  EXPECT_EQ(reason_for(host, "README.txt"), "(not rejected)");
  EXPECT_EQ(reason_for(host, "partial_reconciler.so"),
            "plugin 'partial-reconciler' sets only some of the reconciler hooks (reconciler_start, "
            "reconciler_call, reconciler_stop): a reconciler needs all three");
  EXPECT_EQ(host.rejections().size(), 11u);

  // Only the good plugin's types are served: a refused plugin contributes none, not even the
  // types that did not clash.
  std::vector<std::string> types;
  for (const auto& t : host.step_types()) types.push_back(t.type);
  EXPECT_EQ(types, (std::vector<std::string>{"Echo", "EchoRetrySafe"}));
  Recorder rec;
  EXPECT_EQ(host.execute(request("Echo", {{"message", "still here"}}), rec.callbacks()).status(),
            StepResult::STATUS_SUCCEEDED);
  auto r = host.execute(request("DuplicateOwn", nlohmann::json::object()), rec.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
}

TEST_F(PluginHostTest, InitFailureFromTheSdkCarriesTheExceptionMessage) {
  PluginHost host({{"echo", {{"failInit", true}}}}, state_.path(), "d1");
  host.load({fixtures("good")});
  EXPECT_TRUE(host.step_types().empty());
  EXPECT_EQ(reason_for(host, "echo.so"), "plugin 'echo' failed to initialise: failInit is set in "
                                         "the echo plugin's configuration");
}

TEST_F(PluginHostTest, PluginConfigThatIsNotAnObjectIsRefused) {
  PluginHost host({{"echo", "loud"}}, state_.path(), "d1");
  host.load({fixtures("good")});
  EXPECT_EQ(reason_for(host, "echo.so"),
            "the delegate's configuration for plugin 'echo' must be a JSON object, got string");
}

TEST_F(PluginHostTest, LoadingTheSameFolderTwiceRefusesTheDuplicateName) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good"), fixtures("good")});
  EXPECT_EQ(host.step_types().size(), 2u);
  ASSERT_EQ(host.rejections().size(), 1u);
  EXPECT_THAT(host.rejections()[0].reason, HasSubstr("a plugin named 'echo' is already loaded"));
}

TEST_F(PluginHostTest, SpecIsValidatedAgainstTheSchemaBeforeThePluginRuns) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  Recorder rec;
  auto r = host.execute(request("Echo", {{"mesage", "typo"}, {"progress", 150}}, "say_hi"),
                        rec.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_EQ(r.message(),
            "invalid spec for Echo step 'say_hi': /: required property \"message\" is missing "
            "(required); /mesage: unknown property (allowed: failWith, fromThread, message, "
            "outputs, progress, secretOutputs, showContext, throw, waitForCancel) "
            "(additionalProperties); /progress: must be <= 100, got 150 (maximum)");
  EXPECT_TRUE(rec.saw("invalid spec: spec/progress: must be <= 100, got 150 (maximum)"));
  EXPECT_FALSE(rec.saw("echo:")); // the plugin never ran

  StepRequest bad_json = request("Echo", nlohmann::json::object());
  bad_json.set_spec_json("{\"message\": ");
  r = host.execute(bad_json, rec.callbacks());
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), StartsWith("the spec of step 'step1' is not valid JSON: "));
}

TEST_F(PluginHostTest, ASpecThatPassedOnceIsStillJudgedAfreshWhenItChanges) {
  // The host remembers the last valid spec of a type; a different one is checked again.
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  Recorder rec;
  const nlohmann::json good = {{"message", "hi"}};
  for (int round = 0; round < 2; ++round) {
    auto ok = host.execute(request("Echo", good), rec.callbacks());
    EXPECT_EQ(ok.status(), StepResult::STATUS_SUCCEEDED) << ok.message();
    auto bad =
        host.execute(request("Echo", {{"message", "hi"}, {"progress", 150}}), rec.callbacks());
    EXPECT_EQ(bad.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
    EXPECT_THAT(bad.message(), HasSubstr("/progress: must be <= 100, got 150 (maximum)"));
    StepRequest bad_json = request("Echo", good);
    bad_json.set_spec_json(bad_json.spec_json() + " ");
    bad_json.mutable_spec_json()->front() = '[';
    auto broken = host.execute(bad_json, rec.callbacks());
    EXPECT_EQ(broken.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
    auto empty = host.execute(request("Echo", nlohmann::json::object()), rec.callbacks());
    EXPECT_THAT(empty.message(), HasSubstr("required property \"message\" is missing"));
  }
}

TEST_F(PluginHostTest, TheSdkParsesTheContextOnlyForAStepThatReadsIt) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  // A step that never reads its context runs, whatever the context holds.
  StepRequest quiet = request("Echo", {{"message", "hi"}});
  quiet.set_context_json("{\"stage\": ");
  Recorder rec;
  auto r = host.execute(quiet, rec.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(rec.saw("echo: hi"));

  // One that reads it fails naming the context, as an invalid input.
  StepRequest reads = request("Echo", {{"message", "hi"}, {"showContext", true}});
  reads.set_context_json("{\"stage\": ");
  Recorder rec2;
  r = host.execute(reads, rec2.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), StartsWith("the step's context is not valid JSON: "));
  EXPECT_FALSE(rec2.saw("context:"));

  // A readable context reaches the step; an absent one reads as an empty object.
  reads.set_context_json(R"({"stage":{"identifier":"deploy"}})");
  Recorder rec3;
  r = host.execute(reads, rec3.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(rec3.saw(R"(context: {"stage":{"identifier":"deploy"}})"));
  reads.clear_context_json();
  Recorder rec4;
  r = host.execute(reads, rec4.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(rec4.saw("context: {}"));
}

TEST_F(PluginHostTest, UnknownStepTypeNamesWhatTheDelegateHas) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  Recorder rec;
  auto r = host.execute(request("K8sRollingDeploy", {}), rec.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_DELEGATE_PROVISIONING);
  EXPECT_EQ(r.message(), "no plugin on this delegate provides step type 'K8sRollingDeploy' (it "
                         "has: Echo, EchoRetrySafe)");
}

TEST_F(PluginHostTest, HandlerFailuresBecomeFailedResultsWithTheirType) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  Recorder rec;
  auto r = host.execute(
      request("Echo",
              {{"message", "x"},
               {"failWith", {{"type", "Connectivity"}, {"message", "registry unreachable"}}}}),
      rec.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_CONNECTIVITY);
  EXPECT_EQ(r.message(), "registry unreachable");

  r = host.execute(request("Echo", {{"message", "x"}, {"throw", "out of coffee"}}),
                   rec.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_FAILED);
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_UNKNOWN);
  EXPECT_EQ(r.message(), "out of coffee");
}

TEST_F(PluginHostTest, CancellationReachesThePlugin) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  Recorder rec;
  std::thread canceller([&] {
    testing::wait_until([&] { return rec.saw("echo: wait"); });
    rec.cancel = true;
  });
  auto r = host.execute(request("Echo", {{"message", "wait"}, {"waitForCancel", true}}),
                        rec.callbacks());
  canceller.join();
  EXPECT_EQ(r.status(), StepResult::STATUS_CANCELLED) << r.message();

  // Already cancelled: the plugin is not called at all.
  Recorder late;
  late.cancel = true;
  r = host.execute(request("Echo", {{"message", "never"}}), late.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_CANCELLED);
  EXPECT_FALSE(late.saw("never"));
}

TEST_F(PluginHostTest, GivenRequestBytesReachThePluginAsTheyAre) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  Recorder rec;
  auto req = request("Echo", {{"message", "hi"}, {"showContext", true}});
  // A work directory given twice in the encoding: the later one counts, for the plugin too.
  StepRequest first = req;
  first.set_work_dir("/nowhere");
  StepRequest second;
  second.set_work_dir(state_.path().string());
  const std::string bytes = first.SerializeAsString() + second.SerializeAsString();
  req.set_work_dir(state_.path().string());
  StepResult r = host.execute(req, rec.callbacks(), bytes);
  EXPECT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(rec.saw("work_dir: " + state_.path().string())) << rec.all_text();
}

TEST_F(PluginHostTest, CapstanStepPromptIsReadPerStepType) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("faulty")});
  std::map<std::string, bool> prompt;
  for (const auto& t : host.step_types()) prompt[t.type] = t.prompt;
  EXPECT_TRUE(prompt.at("Prompt"));
  EXPECT_TRUE(prompt.at("PromptLiar"));
  EXPECT_FALSE(prompt.at("RetrySafeNap"));
  EXPECT_FALSE(prompt.at("Throws"));
}

TEST_F(PluginHostTest, TimeoutTurnsCancelledOnAndIsReportedAsATimeout) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good"), fixtures("faulty")});
  for (const char* type : {"Echo", "WaitsForCancel"}) {
    Recorder rec;
    auto req = request(type, {{"message", "slow"}, {"waitForCancel", true}}, "slow_step");
    if (std::string(type) == "WaitsForCancel") req.set_spec_json("{}");
    req.set_timeout_ms(300);
    auto r = host.execute(req, rec.callbacks());
    EXPECT_EQ(r.status(), StepResult::STATUS_FAILED) << type;
    EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_TIMEOUT) << type;
    EXPECT_EQ(r.message(), "step 'slow_step' timed out after 300ms") << type;
  }
}

TEST_F(PluginHostTest, EveryFaultOfAPluginBecomesAFailedResultNamingThePlugin) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("faulty")});
  ASSERT_TRUE(host.rejections().empty()) << host.rejections()[0].reason;
  const std::map<std::string, std::string> expected = {
      {"Throws", "plugin 'faulty' let a C++ exception escape execute(): the faulty plugin lost "
                 "its temper"},
      {"Garbage", "plugin 'faulty' returned 6 bytes that are not a capstan.plugin.v1.StepResult"},
      {"NoResult", "plugin 'faulty' returned without a result (execute() must call set_result "
                   "before returning CAPSTAN_RC_OK)"},
      {"NoStatus", "plugin 'faulty' returned a result without a valid status (0)"},
      {"RcError", "plugin 'faulty' failed to run the step (rc 1): disk full while writing "
                  "/var/cache/faulty"},
      {"FailsQuietly", "plugin 'faulty' reported a failure without a reason"},
  };
  for (const auto& [type, message] : expected) {
    Recorder rec;
    auto r = host.execute(request(type, nlohmann::json::object()), rec.callbacks());
    EXPECT_EQ(r.status(), StepResult::STATUS_FAILED) << type;
    EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_UNKNOWN) << type;
    EXPECT_EQ(r.message(), message) << type;
  }
}

TEST_F(PluginHostTest, TextFromAPluginIsSplitIntoLinesAndMadeValidUtf8) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("faulty")});
  Recorder rec;
  auto r = host.execute(request("BadText", nlohmann::json::object()), rec.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_SUCCEEDED);
  EXPECT_EQ(rec.lines(CAPSTAN_LOG_INFO),
            (std::vector<std::string>{"first line", "second line", "bad byte \xEF\xBF\xBD here"}));
  EXPECT_EQ(rec.outputs,
            (std::map<std::string, std::string>{{"out\xEF\xBF\xBD", "value \xEF\xBF\xBD"}}));
  EXPECT_EQ(r.message(), std::string(4096, 'm') + "...");
}

TEST_F(PluginHostTest, ThrowingRunnerCallbacksDoNotUnwindThroughThePlugin) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  TaskCallbacks cb;
  cb.log = [](capstan_log_level, std::string_view) { throw std::runtime_error("log sink down"); };
  cb.output = [](std::string_view, std::string_view) { throw std::runtime_error("no outputs"); };
  cb.cancelled = []() -> bool { throw std::runtime_error("cannot tell"); };
  auto r = host.execute(request("Echo", {{"message", "x"}, {"outputs", {{"a", "b"}}}}), cb);
  EXPECT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  // Empty callbacks are fine too.
  r = host.execute(request("Echo", {{"message", "x"}, {"outputs", {{"a", "b"}}}}), TaskCallbacks{});
  EXPECT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
}

TEST_F(PluginHostTest, ConcurrentStepsKeepTheirCallbacksApart) {
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  constexpr int kThreads = 8;
  constexpr int kSteps = 25;
  std::vector<std::thread> threads;
  std::atomic<int> mixed{0};
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kSteps; ++i) {
        Recorder rec;
        const std::string msg = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto r = host.execute(request("Echo", {{"message", msg}, {"outputs", {{"who", msg}}}}),
                              rec.callbacks());
        if (r.status() == StepResult::STATUS_SUCCEEDED) ++ok;
        if (rec.lines(CAPSTAN_LOG_INFO) != std::vector<std::string>{"echo: " + msg} ||
            rec.outputs.at("who") != msg) {
          ++mixed;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kSteps);
  EXPECT_EQ(mixed.load(), 0);
}

TEST_F(PluginHostTest, SeveralPluginsEachWithTheirOwnProtobufCopyLoadSideBySide) {
  // The host and each plugin carry their own generated capstan.plugin.v1 code; with the lite
  // runtime nothing registers globally, so no "File already exists in database" and each copy
  // parses the other's bytes.
  ::testing::internal::CaptureStderr();
  {
    PluginHost host(nlohmann::json::object(), state_.path(), "d1");
    host.load({testing::plugin_dir(), fixtures("good"), fixtures("faulty")});
    EXPECT_TRUE(host.rejections().empty());
    Recorder rec;
    EXPECT_EQ(host.execute(request("Echo", {{"message", "a"}}), rec.callbacks()).status(),
              StepResult::STATUS_SUCCEEDED);
    auto shell = host.execute(
        request("ShellScript",
                {{"shell", "Bash"},
                 {"source", {{"type", "Inline"}, {"spec", {{"script", "echo from-shell"}}}}}}),
        rec.callbacks());
    EXPECT_EQ(shell.status(), StepResult::STATUS_SUCCEEDED) << shell.message() << rec.all_text();
    EXPECT_EQ(
        host.execute(request("FailsQuietly", nlohmann::json::object()), rec.callbacks()).status(),
        StepResult::STATUS_FAILED);
    EXPECT_TRUE(rec.saw("from-shell"));
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("already exists"), std::string::npos) << err;
}

// A plugin that segfaults takes its process down; the crash story at the delegate level is the
// task fabric's. Here: the crash happens in a child, the parent sees it and carries on.
TEST_F(PluginHostTest, CrashingPluginKillsOnlyTheProcessThatRunsIt) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto crashed = [](int status) {
    // Plain builds die of SIGSEGV; under AddressSanitizer the process reports and exits non-zero.
    return (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
           (WIFEXITED(status) && WEXITSTATUS(status) != 0);
  };
  const fs::path state = state_.path();
  EXPECT_EXIT(
      {
        PluginHost host(nlohmann::json::object(), state, "d1");
        host.load({fixtures("crash")});
        if (host.step_types().size() != 1) std::_Exit(0); // would fail the predicate
        Recorder rec;
        host.execute(request("Crash", nlohmann::json::object()), rec.callbacks());
        std::_Exit(0);
      },
      crashed, "");
  // The parent still loads and runs plugins.
  PluginHost host(nlohmann::json::object(), state_.path(), "d1");
  host.load({fixtures("good")});
  Recorder rec;
  EXPECT_EQ(host.execute(request("Echo", {{"message", "after"}}), rec.callbacks()).status(),
            StepResult::STATUS_SUCCEEDED);
}

} // namespace
} // namespace capstan::delegate
