// A fresh capstan-sandbox process per test (port 0, temp data dir) and a kubectl bound to it.
#pragma once

#include "capstan/testing/testing.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace capstan::sandbox::testing {

class SandboxTest : public ::testing::Test {
protected:
  void SetUp() override;
  void TearDown() override;

  // Starts (or restarts) the sandbox on the test's data dir.
  void start_sandbox();
  void stop_sandbox(); // SIGTERM, waits for exit

  // kubectl with KUBECONFIG and HOME pointing into the test's temp dir.
  process::RunResult kubectl(std::vector<std::string> args,
                             std::optional<std::string> stdin_data = std::nullopt,
                             std::chrono::seconds timeout = std::chrono::seconds(90));
  // kubectl that must succeed; returns stdout.
  std::string kubectl_ok(std::vector<std::string> args,
                         std::optional<std::string> stdin_data = std::nullopt);
  nlohmann::json get_json(std::vector<std::string> args);
  // Writes a manifest into the temp dir and returns its path.
  std::string manifest(const std::string& name, const std::string& yaml);

  std::unique_ptr<capstan::testing::TempDir> dir_;
  std::unique_ptr<capstan::testing::Daemon> daemon_;
  std::string data_dir_;
  std::string kubeconfig_;
  int starts_ = 0;
};

// A Deployment + Service + ConfigMap app with the given image.
std::string app_manifest(const std::string& image, int replicas = 3);

} // namespace capstan::sandbox::testing
