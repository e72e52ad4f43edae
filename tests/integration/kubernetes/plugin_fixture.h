// The kubernetes plugin loaded by the real plugin host, deploying to a fresh capstan-sandbox,
// with a Local manifest store in a temp folder and the stage context a coordinator would send.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "capstan/delegate/plugin_host.h"
#include "capstan/kube/client.h"
#include "capstan/kube/config.h"
#include "capstan/testing/sandbox.h"
#include "capstan/testing/task_recorder.h"

namespace capstan::plugins::kubernetes::testing {

namespace ct = capstan::testing;
using nlohmann::json;
using plugin::v1::StepResult;

struct RunOptions {
  std::string execution = "exec-1";
  bool rollback = false;
  std::uint64_t timeout_ms = 60000;
  std::string tag = "v1";
  bool environment = true; // false: the context has no environment (nor pipeline variables)
};

class PluginTest : public ::testing::Test {
public: // helpers of the tests' free functions too
  PluginTest();
  void SetUp() override;

  // The app: Deployment "web" (replicas from values), ConfigMap "web-config" (used through
  // envFrom), Service "web"; values.yaml sets replicas 3 and image <+artifact.image>.
  void write_app();
  void write(const std::string& rel, const std::string& text);

  json context(const RunOptions& o) const;
  StepResult run(const std::string& type, const json& spec, ct::Recorder& rec,
                 const RunOptions& o = {});
  // Runs and expects success, printing the log otherwise.
  void run_ok(const std::string& type, const json& spec, const RunOptions& o = {});

  json get(const std::string& api_version, const std::string& kind, const std::string& name,
           const std::string& ns = "default");
  bool exists(const std::string& api_version, const std::string& kind, const std::string& name,
              const std::string& ns = "default");
  json history(); // the release history, parsed from its ConfigMap

  ct::TempDir dir_{"k8s-plugin-test"};
  ct::TempDir state_{"k8s-plugin-state"};
  std::unique_ptr<ct::Sandbox> sandbox_;
  std::unique_ptr<kube::Client> client_;
  delegate::PluginHost host_;
  json service_;
  json connector_;
  std::string release_ = "release-web";
  std::string namespace_ = "default";
  int works_ = 0;
};

} // namespace capstan::plugins::kubernetes::testing
