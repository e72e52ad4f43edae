// What capstan_add_plugin produces: a library that exports its entry point and nothing else,
// and depends on no Capstan process code (coordinator, delegate, wire).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "capstan/testing/testing.h"

namespace capstan {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<fs::path> built_plugins() {
  return {testing::plugin_dir() / "shell.so",
          fs::path(CAPSTAN_FIXTURE_PLUGIN_DIR) / "good" / "echo.so",
          fs::path(CAPSTAN_FIXTURE_PLUGIN_DIR) / "faulty" / "faulty.so"};
}

TEST(PluginBuild, ExportsOnlyTheEntryPoint) {
  for (const auto& so : built_plugins()) {
    auto r = testing::run({"nm", "-D", "--defined-only", "--format=just-symbols", so.string()});
    ASSERT_TRUE(r.status.success()) << r.err;
    EXPECT_EQ(words(r.out), std::vector<std::string>{"capstan_plugin_entry"}) << so;
  }
}

TEST(PluginBuild, NeedsOnlySystemLibraries) {
  for (const auto& so : built_plugins()) {
    auto r = testing::run({"readelf", "-d", "-W", so.string()});
    ASSERT_TRUE(r.status.success()) << r.err;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (line.find("(NEEDED)") == std::string::npos) continue;
      // libprotobuf-lite, the C/C++ runtimes and loader, the sanitizer runtimes in such builds.
      EXPECT_THAT(
          line,
          ::testing::ContainsRegex(
              R"(\[(libprotobuf-lite|libstdc\+\+|libm|libgcc_s|libc|ld-linux-[-a-z0-9_]+|libasan|libubsan)\.so)"))
          << so;
      EXPECT_THAT(line, ::testing::Not(::testing::HasSubstr("capstan"))) << so;
    }
  }
}

} // namespace
} // namespace capstan
