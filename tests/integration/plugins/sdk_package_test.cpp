// `cmake --install` the SDK into a temp prefix, build sdk/examples/hello against that prefix
// only, and run its step through the plugin host next to the bundled plugins.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

TEST(SdkPackage, OutOfTreePluginBuildsAgainstTheInstalledSdkAloneAndRuns) {
  TempDir tmp("sdk-package");
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
  ASSERT_TRUE(fs::exists(build / "hello.so"));
  const std::string cache = testing::read_file(build / "CMakeCache.txt");
  EXPECT_THAT(cache, HasSubstr("Capstan_DIR:PATH=" + (prefix / "lib/cmake/Capstan").string()));
  EXPECT_EQ(cache.find(testing::source_dir().string()), std::string::npos)
      << "the out-of-tree build refers to the source tree";
  EXPECT_EQ(cache.find(std::string(CAPSTAN_BUILD_DIR) + "/"), std::string::npos)
      << "the out-of-tree build refers to the build tree";

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

} // namespace
} // namespace capstan::delegate
