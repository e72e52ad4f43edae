// `cmake --install` the SDK into a temp prefix, build sdk/examples/hello against that prefix
// only, and run its step through the plugin host next to the bundled plugins.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "capstan/delegate/plugin_host.h"
#include "capstan/testing/task_recorder.h"
#include "capstan/testing/testing.h"

namespace capstan::delegate {
namespace {

namespace fs = std::filesystem;
using plugin::v1::StepRequest;
using plugin::v1::StepResult;
using ::testing::HasSubstr;
using testing::TempDir;

process::RunResult must_run(std::vector<std::string> argv) {
  auto r = testing::run(argv, {}, std::chrono::minutes(10));
  std::string cmd;
  for (const auto& a : argv) cmd += a + " ";
  EXPECT_TRUE(r.status.success()) << cmd << "\n" << r.out << r.err;
  return r;
}

void copy_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  fs::copy(from, to, fs::copy_options::recursive);
}

// Installs the SDK under tmp/prefix and builds a copy of sdk/examples/hello against it alone;
// returns the folder holding hello.so.
fs::path build_hello(const TempDir& tmp) {
  const fs::path prefix = tmp / "prefix";
  must_run({CAPSTAN_CMAKE_COMMAND, "--install", CAPSTAN_BUILD_DIR, "--component", "sdk", "--prefix",
            prefix.string()});
  for (const char* f :
       {"include/capstan/plugin_api.h", "include/capstan/sdk/plugin.h",
        "include/capstan/process/subprocess.h",
        "share/capstan/proto/capstan/plugin/v1/plugin.proto",
        "lib/cmake/Capstan/CapstanConfig.cmake", "lib/cmake/Capstan/CapstanConfigVersion.cmake"}) {
    EXPECT_TRUE(fs::exists(prefix / f)) << f;
  }

  // The example's sources alone, away from the repository: nothing can reach back into it.
  const fs::path src = tmp / "hello-src";
  const fs::path build = tmp / "hello-build";
  copy_tree(testing::source_dir() / "sdk/examples/hello", src);
  must_run({CAPSTAN_CMAKE_COMMAND, "-S", src.string(), "-B", build.string(), "-G", "Ninja",
            "-DCMAKE_MAKE_PROGRAM=" CAPSTAN_MAKE_PROGRAM,
            "-DCMAKE_CXX_COMPILER=" CAPSTAN_CXX_COMPILER, "-DCMAKE_BUILD_TYPE=Release",
            "-DCMAKE_PREFIX_PATH=" + prefix.string(), "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"});
  must_run({CAPSTAN_CMAKE_COMMAND, "--build", build.string()});
  EXPECT_TRUE(fs::exists(build / "hello.so"));
  const std::string cache = testing::read_file(build / "CMakeCache.txt");
  EXPECT_THAT(cache, HasSubstr("Capstan_DIR:PATH=" + (prefix / "lib/cmake/Capstan").string()));
  EXPECT_EQ(cache.find(testing::source_dir().string()), std::string::npos)
      << "the out-of-tree build refers to the source tree";
  EXPECT_EQ(cache.find(std::string(CAPSTAN_BUILD_DIR) + "/"), std::string::npos)
      << "the out-of-tree build refers to the build tree";
  return build;
}

TEST(SdkPackage, OutOfTreePluginBuildsAgainstTheInstalledSdkAloneAndRuns) {
  TempDir tmp("sdk-package");
  const fs::path build = build_hello(tmp);
  ASSERT_TRUE(fs::exists(build / "hello.so"));

  // Dropped into a plugin folder next to the bundled plugins, it loads and runs.
  const fs::path plugins = tmp / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(build / "hello.so", plugins / "hello.so");
  fs::copy_file(testing::plugin_dir() / "shell.so", plugins / "shell.so");
  PluginHost host(nlohmann::json::object(), tmp / "state", "d1");
  host.load({plugins});
  ASSERT_TRUE(host.rejections().empty()) << host.rejections()[0].reason;
  std::vector<std::string> types;
  for (const auto& t : host.step_types()) types.push_back(t.type + "@" + t.plugin_version);
  EXPECT_EQ(types, (std::vector<std::string>{"Hello@1.0.0", "ShellScript@1.0.0"}));
  EXPECT_TRUE(host.step_types()[0].retry_safe);

  StepRequest req;
  req.set_step_type("Hello");
  req.set_step_identifier("greet");
  req.set_spec_json(R"({"name": "world", "shout": true})");
  testing::Recorder rec;
  StepResult r = host.execute(req, rec.callbacks());
  EXPECT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << r.message();
  EXPECT_TRUE(rec.saw("HELLO, WORLD!")) << rec.all_text();
  EXPECT_EQ(rec.outputs["greeting"], "HELLO, WORLD!");

  req.set_spec_json(R"({"name": ""})");
  r = host.execute(req, rec.callbacks());
  EXPECT_EQ(r.error_type(), plugin::v1::ERROR_TYPE_INVALID_INPUT);
  EXPECT_THAT(r.message(), HasSubstr("/name: must not be empty (minLength)"));
}

// The local stack `capstan up` starts under a temp home, stopped by `capstan down` whatever
// happens.
class Stack {
public:
  explicit Stack(const TempDir& tmp) : tmp_(tmp) {}
  ~Stack() { capstan({"down"}); }
  process::RunResult capstan(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::binary("capstan").string(), "--home",
                                     (tmp_ / "home").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run(argv, {{"HOME", tmp_.path().string()}, {"NO_COLOR", "1"}},
                        std::chrono::seconds(60), tmp_.path().string());
  }
  fs::path home() const { return tmp_ / "home"; }

private:
  const TempDir& tmp_;
};

constexpr const char* kHelloPipeline = R"(pipeline:
  identifier: hello_demo
  name: Hello demo
  stages:
    - stage:
        identifier: greet
        name: Greet
        type: Custom
        spec:
          execution:
            steps:
              - step:
                  type: Hello
                  identifier: hello
                  name: Say hello
                  timeout: 1m
                  spec:
                    name: world
              - step:
                  type: ShellScript
                  identifier: echo
                  name: Echo the greeting
                  timeout: 1m
                  spec:
                    shell: Bash
                    source:
                      type: Inline
                      spec:
                        script: echo "greeting=<+execution.steps.hello.output.outputVariables.greeting>"
)";

// What a third party does: build the plugin against the installed SDK, copy the .so into a
// running delegate's plugin folder, restart the delegate — and nothing else.
TEST(SdkPackage, DroppedIntoADelegatesPluginFolderItsStepRunsAfterARestart) {
  TempDir tmp("plugin-drop-in");
  const fs::path build = build_hello(tmp);
  ASSERT_TRUE(fs::exists(build / "hello.so"));
  const fs::path plugins = tmp / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(testing::plugin_dir() / "shell.so", plugins / "shell.so");
  testing::write_file(tmp / "hello.yaml", kHelloPipeline);

  Stack stack(tmp);
  auto up = stack.capstan(
      {"up", "--api-port", "0", "--bind", "tcp://127.0.0.1:0", "--plugin-dir", plugins.string()});
  ASSERT_TRUE(up.status.success()) << up.out << up.err;
  EXPECT_THAT(up.out, HasSubstr("step types: ShellScript"));
  auto refused = stack.capstan({"apply", "-f", (tmp / "hello.yaml").string()});
  EXPECT_EQ(refused.status.exit_code, 2) << refused.out << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("unknown step type 'Hello'"));

  // Drop the plugin in and restart the delegate alone; the coordinator keeps running.
  fs::copy_file(build / "hello.so", plugins / "hello.so");
  const long delegate_pid = std::stol(testing::read_file(stack.home() / "run" / "delegate.pid"));
  ASSERT_EQ(::kill(static_cast<pid_t>(delegate_pid), SIGTERM), 0);
  ASSERT_TRUE(testing::wait_until(
      [&] { return !testing::process_alive(static_cast<pid_t>(delegate_pid)); }));
  up = stack.capstan(
      {"up", "--api-port", "0", "--bind", "tcp://127.0.0.1:0", "--plugin-dir", plugins.string()});
  ASSERT_TRUE(up.status.success()) << up.out << up.err;
  EXPECT_THAT(up.out, HasSubstr("coordinator is already running"));
  EXPECT_THAT(up.out, HasSubstr("delegate local started"));
  EXPECT_THAT(up.out, HasSubstr("Hello"));
  // The restarted delegate announces the new step type once it has reconnected.
  auto offers_hello = [&] {
    auto d = stack.capstan({"delegates", "-o", "json"});
    auto list = nlohmann::json::parse(d.out, nullptr, false);
    if (!list.is_array()) return false;
    for (const auto& delegate : list) {
      if (!delegate.value("connected", false)) continue;
      for (const auto& t : delegate.value("stepTypes", nlohmann::json::array())) {
        if (t.value("type", "") == "Hello" && t.value("pluginVersion", "") == "1.0.0") return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(testing::wait_until(offers_hello)) << stack.capstan({"delegates", "-o", "json"}).out;

  auto apply = stack.capstan({"apply", "-f", (tmp / "hello.yaml").string()});
  ASSERT_TRUE(apply.status.success()) << apply.out << apply.err;
  auto run = stack.capstan({"run", "hello_demo"});
  EXPECT_EQ(run.status.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("greet.hello | Hello, world!"));
  EXPECT_THAT(run.out, HasSubstr("greet.echo | greeting=Hello, world!"));
}

} // namespace
} // namespace capstan::delegate
