// capstan-sandbox: serves a Kubernetes-compatible API for kubectl and Capstan from a data dir.
#include "capstan/sandbox/sandbox.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

namespace {

const char* kUsage =
    "usage: capstan-sandbox --data-dir DIR [--port N] [--address ADDR] [--threads N] "
    "[--log-requests]\n"
    "\n"
    "Serves a Kubernetes-compatible API over HTTPS with simulated controllers.\n"
    "State, certificates, the bearer token and DIR/kubeconfig live in DIR.\n"
    "\n"
    "  --data-dir DIR    where state is kept (created when missing)\n"
    "  --port N          port to listen on; 0 (the default) picks a free one, written to DIR/port\n"
    "  --address ADDR    address to listen on (default 127.0.0.1)\n"
    "  --threads N       connections served at once; each watch holds one (default 256)\n"
    "  --log-requests    log every request to stderr\n"
    "\n"
    "DIR/config.yaml (optional) tunes the simulation: podReadyDelay, podReadyJitter,\n"
    "podTerminationDelay, jobDuration, crashBackoff, nodes, watchHistory, failureRules.\n";

} // namespace

int main(int argc, char** argv) {
  capstan::sandbox::SandboxOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "capstan-sandbox: %s needs a value\n%s", name, kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--data-dir")
        options.data_dir = value("--data-dir");
      else if (a == "--port")
        options.port = std::stoi(value("--port"));
      else if (a == "--address")
        options.address = value("--address");
      else if (a == "--threads")
        options.threads = std::stoi(value("--threads"));
      else if (a == "--log-requests")
        options.log_requests = true;
      else if (a == "--help" || a == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else {
        std::fprintf(stderr, "capstan-sandbox: unknown argument %s\n%s", a.c_str(), kUsage);
        return 2;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "capstan-sandbox: %s needs a number\n", a.c_str());
      return 2;
    }
  }
  if (options.data_dir.empty()) {
    std::fprintf(stderr, "capstan-sandbox: --data-dir is required\n%s", kUsage);
    return 2;
  }
  if (options.port < 0 || options.port > 65535) {
    std::fprintf(stderr, "capstan-sandbox: --port must be between 0 and 65535\n");
    return 2;
  }
  // Signals are taken by a dedicated thread so shutdown runs outside a signal handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    capstan::sandbox::Sandbox sandbox(options);
    sandbox.start();
    std::printf("capstan-sandbox listening on %s\n", sandbox.server_url().c_str());
    std::printf("kubeconfig: %s\n", sandbox.kubeconfig_path().c_str());
    std::fflush(stdout);
    std::thread signals([&] {
      int sig = 0;
      sigwait(&set, &sig);
      std::fprintf(stderr, "capstan-sandbox: %s, shutting down\n", strsignal(sig));
      sandbox.stop();
    });
    signals.detach();
    sandbox.wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "capstan-sandbox: %s\n", e.what());
    return 1;
  }
  return 0;
}
