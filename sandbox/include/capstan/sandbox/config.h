// The sandbox's tunables, read from DIR/config.yaml (all optional).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace capstan::sandbox {

// What a simulated container does when its image matches a rule.
enum class FailureMode {
  kCrashLoop, // starts, exits 1, restarts with back-off: CrashLoopBackOff, never Ready
  kPullFail,  // ErrImagePull, then ImagePullBackOff
  kUnready,   // Running but its readiness probe never passes
  kExitError, // runs, then exits 1 (a Job's pod fails; restartPolicy Always crash-loops)
};

struct FailureRule {
  std::string image; // glob on the image reference: "*:crashloop", "registry.local/bad/*"
  FailureMode mode = FailureMode::kCrashLoop;
  int exit_code = 1;
  std::string message; // shown in the container state / events
};

struct SandboxConfig {
  std::chrono::milliseconds pod_ready_delay{200};
  std::chrono::milliseconds pod_ready_jitter{100};
  std::chrono::milliseconds pod_termination_delay{100};
  std::chrono::milliseconds job_duration{300};
  std::chrono::milliseconds crash_backoff{1000}; // first restart back-off; doubles, capped 8x
  int nodes = 1;
  std::size_t watch_history = 20000;
  std::vector<FailureRule> failure_rules; // first match wins

  // Defaults plus DIR/config.yaml when present; throws std::runtime_error naming file/line.
  static SandboxConfig load(const std::filesystem::path& data_dir);
  // The rule an image matches, if any.
  const FailureRule* match(const std::string& image) const;
};

} // namespace capstan::sandbox
