// A capstan-sandbox process for tests and benchmarks: its own data directory, a free port, a
// kubeconfig, and the real kubectl bound to it.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "capstan/testing/testing.h"

namespace capstan::testing {

// Simulation settings that keep tests short; behaviour is the same as with the defaults.
inline constexpr const char* kFastSandbox =
    "podReadyDelay: 30ms\npodReadyJitter: 30ms\npodTerminationDelay: 20ms\n"
    "jobDuration: 100ms\ncrashBackoff: 200ms\n";

// Object i of the benchmarks' mix, as one YAML document: 40% ConfigMaps (cm-i), 30%
// Deployments (app-i), 30% Services (svc-i), labelled `bench: <label>`.
std::string bench_object_yaml(int i, const std::string& label);

class Sandbox {
public:
  // Writes `config_yaml` as the sandbox's config.yaml (none when empty) and starts it.
  explicit Sandbox(std::filesystem::path data_dir, const std::string& config_yaml = kFastSandbox);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Waits until it listens; throws std::runtime_error with its log otherwise. `port` 0 picks a
  // free one; pass the previous port() to restart where clients still point.
  void start(int port = 0);
  void stop(); // SIGTERM, waits for the exit

  const std::filesystem::path& data_dir() const { return data_dir_; }
  std::filesystem::path kubeconfig() const { return data_dir_ / "kubeconfig"; }
  std::filesystem::path ca_file() const { return data_dir_ / "pki" / "ca.crt"; }
  int port() const;
  std::string server() const; // https://127.0.0.1:PORT
  std::string token() const;
  std::string log() const;

  // kubectl with KUBECONFIG (and HOME, for kubectl's cache) pointing at this sandbox.
  process::RunResult kubectl(std::vector<std::string> args,
                             std::optional<std::string> stdin_data = std::nullopt,
                             std::chrono::seconds timeout = std::chrono::seconds(120)) const;
  // The API requests the sandbox has served so far (its /metrics counter), not counting the
  // request that reads it.
  long long requests() const;
  // The sandbox process's id (for benchmarks reading its CPU time).
  pid_t pid() const;

private:
  std::filesystem::path data_dir_;
  std::unique_ptr<Daemon> daemon_;
  int starts_ = 0;
};

} // namespace capstan::testing
