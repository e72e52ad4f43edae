// capstan-sandbox: a Kubernetes-API-compatible server over HTTPS with simulated controllers.
#pragma once

#include "capstan/sandbox/cluster.h"

#include <filesystem>
#include <memory>
#include <string>

namespace capstan::sandbox {

struct SandboxOptions {
  std::filesystem::path data_dir;
  std::string address = "127.0.0.1";
  int port = 0;      // 0: any free port (DIR/port and DIR/kubeconfig say which)
  int threads = 256; // connections served at once (each watch holds one)
  bool log_requests = false;
};

class Sandbox {
public:
  // Loads DIR/config.yaml, the credentials (created on first start) and the stored objects;
  // throws std::runtime_error with the reason.
  explicit Sandbox(SandboxOptions options);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Binds, writes DIR/kubeconfig and DIR/port, starts the controllers and the server thread.
  void start();
  // Ends watches, stops serving and the controllers. Idempotent.
  void stop();
  // Blocks until stop() (from another thread or a signal handler's thread).
  void wait();

  int port() const;
  std::string server_url() const;
  std::filesystem::path kubeconfig_path() const;
  const std::string& token() const;
  Cluster& cluster();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace capstan::sandbox
