// The fixture the GitOps end-to-end tests share: a temporary directory, a real coordinator
// (Stack) started before each test, delegates hosting the gitops plugin's reconciler (polling Git
// every 300 ms), and, when a test fails, every process's log.
#pragma once

#include <gtest/gtest.h>

#include <signal.h>

#include <capstan/testing/apps_fixtures.h>
#include <capstan/testing/sandbox.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "../stack.h"

namespace capstan::testing {

class GitOpsStackTest : public ::testing::Test {
protected:
  // `name` names the test's temporary directory.
  explicit GitOpsStackTest(const std::string& name) : dir_(name) {}

  // Starts the coordinator (with stack_.coordinator_flags).
  void SetUp() override {
    write_file(dir_ / "delegate.yaml", "plugins:\n  gitops:\n    pollIntervalMs: 300\n");
    stack_.start_coordinator();
  }
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "coordinator log:\n" << stack_.coordinator().log() << "\n";
      for (auto* d : delegates_) std::cerr << "delegate log:\n" << d->log() << "\n";
    }
    // A test may have stopped a delegate (SIGSTOP): it must be able to end.
    for (auto* d : delegates_) d->child().signal(SIGCONT);
  }

  // A delegate with the bundled plugins and one slot.
  Daemon& delegate(const std::string& name) {
    auto& d = stack_.start_delegate(name, {plugin_dir()}, 1,
                                    {"--config", (dir_ / "delegate.yaml").string()});
    delegates_.push_back(&d);
    return d;
  }
  // The environment `dev`, the sandbox's connector and the GitOps cluster `sandbox` on it.
  std::string cluster_yaml() const {
    return gitops_cluster_yaml(sandbox_->kubeconfig().string(), "sandbox", "dev");
  }
  nlohmann::json app(const std::string& name) { return stack_.get("/api/v1/apps/" + name); }
  // Synced and Healthy (at `revision`, when one is given).
  static bool synced_healthy(const nlohmann::json& a, const std::string& revision = "") {
    const nlohmann::json none = nlohmann::json::object();
    const nlohmann::json s = a.value("status", none);
    return s.value("sync", none).value("status", "") == "Synced" &&
           s.value("health", none).value("status", "") == "Healthy" &&
           (revision.empty() || s.value("sync", none).value("revision", "") == revision);
  }

  TempDir dir_;
  std::unique_ptr<Sandbox> sandbox_; // the one cluster of most tests; cluster_yaml() names it
  Stack stack_{dir_.path()};
  std::vector<Daemon*> delegates_;
};

} // namespace capstan::testing
