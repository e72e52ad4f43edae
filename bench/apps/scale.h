// The GitOps scale benchmarks' shared pieces: N applications of one ConfigMap each (the files of
// one repository), the kubectl baseline of the same files, and a process's resident memory.
#pragma once

#include <capstan/testing/git_servers.h>
#include <capstan/testing/sandbox.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <sys/types.h>

namespace capstan::bench {

inline std::string app_name(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "app-%05d", i);
  return buf;
}

inline std::string configmap_yaml(const std::string& name, const std::string& value) {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  value: \"" +
         value + "\"\n";
}

// apps/app-NNNNN/cm.yaml: ConfigMap app-NNNNN with value "v1", for i in [0, count).
inline testing::FileSet configmap_files(int count) {
  testing::FileSet files;
  for (int i = 0; i < count; ++i) {
    files["apps/" + app_name(i) + "/cm.yaml"] = configmap_yaml(app_name(i), "v1");
  }
  return files;
}

// The baseline: the same objects with one `kubectl apply --server-side -R` (one process, no Git,
// no comparison, no status) into namespace bench of a fresh sandbox under `dir`. Milliseconds.
inline double kubectl_baseline_ms(const testing::FileSet& files, const std::filesystem::path& dir) {
  testing::Sandbox sandbox(dir / "sandbox-baseline");
  for (const auto& [path, text] : files) testing::write_file(dir / "plain" / path, text);
  sandbox.kubectl({"create", "namespace", "bench"});
  auto t = std::chrono::steady_clock::now();
  auto r = sandbox.kubectl(
      {"apply", "--server-side", "-n", "bench", "-R", "-f", (dir / "plain").string()}, std::nullopt,
      std::chrono::seconds(1200));
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  if (!r.status.success()) throw std::runtime_error("baseline kubectl apply failed: " + r.err);
  return ms;
}

// Resident memory of a process in KiB from /proc/<pid>/status: now (VmRSS) and its peak (VmHWM);
// -1 when unknown. pid 0 is this process.
struct Rss {
  long rss_kib = -1;
  long hwm_kib = -1;
};

inline Rss rss_of(pid_t pid = 0) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/status")
                            : "/proc/" + std::to_string(pid) + "/status");
  Rss out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) out.rss_kib = std::stol(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) out.hwm_kib = std::stol(line.substr(6));
  }
  return out;
}

} // namespace capstan::bench
