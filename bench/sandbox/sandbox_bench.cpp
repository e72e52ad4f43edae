// Measures capstan-sandbox under `kubectl apply` of N objects: wall time, API requests, request
// rate and resident memory, against two baselines measured in the same run (a keep-alive GET
// loop for the server's request ceiling, and one kubectl call per object for client overhead).
#include "capstan/testing/sandbox.h"
#include "capstan/testing/testing.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

namespace ct = capstan::testing;
using Clock = std::chrono::steady_clock;

namespace {

struct Server {
  std::unique_ptr<ct::Daemon> daemon;
  std::string dir, kubeconfig, token;
  int port = 0;
};

Server start(const ct::TempDir& root, const std::string& name) {
  Server s;
  s.dir = (root.path() / name).string();
  s.kubeconfig = s.dir + "/kubeconfig";
  s.daemon =
      std::make_unique<ct::Daemon>(std::vector<std::string>{ct::binary("capstan-sandbox").string(),
                                                            "--data-dir", s.dir, "--port", "0"},
                                   root.path() / (name + ".log"));
  if (!s.daemon->wait_for_log("listening on https://")) {
    std::fprintf(stderr, "sandbox did not start:\n%s\n", s.daemon->log().c_str());
    std::exit(1);
  }
  s.token = ct::read_file(s.dir + "/token");
  while (!s.token.empty() && s.token.back() == '\n') s.token.pop_back();
  s.port = std::stoi(ct::read_file(s.dir + "/port"));
  return s;
}

std::unique_ptr<httplib::SSLClient> client(const Server& s) {
  auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", s.port);
  c->set_ca_cert_path((s.dir + "/pki/ca.crt").c_str());
  c->enable_server_certificate_verification(true);
  c->set_bearer_token_auth(s.token.c_str());
  c->set_keep_alive(true);
  return c;
}

long long requests(const Server& s) {
  auto c = client(s);
  auto r = c->Get("/metrics");
  if (!r) return -1;
  const std::string name = "\ncapstan_sandbox_requests_total ";
  auto pos = r->body.find(name);
  if (pos == std::string::npos) return -1;
  return std::stoll(r->body.substr(pos + name.size())) - 1; // this request itself is counted
}

long long status_kb(const Server& s, const char* field) {
  std::ifstream in("/proc/" + std::to_string(s.daemon->child().pid()) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(std::strlen(field) + 1));
  return -1;
}

struct Result {
  std::string name;
  double seconds = 0;
  long long requests = 0;
  long long rss_kb = 0, hwm_kb = 0;
  bool ok = true;
};

void print(const Result& r) {
  std::printf("%-44s %8.2f s %7lld req %9.1f req/s  RSS %6.1f MiB (peak %6.1f MiB)%s\n",
              r.name.c_str(), r.seconds, r.requests, r.requests / r.seconds, r.rss_kb / 1024.0,
              r.hwm_kb / 1024.0, r.ok ? "" : "  FAILED");
}

Result measure(const std::string& name, Server& s, const std::function<bool()>& work) {
  Result r;
  r.name = name;
  long long before = requests(s);
  auto t0 = Clock::now();
  r.ok = work();
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.requests = requests(s) - before;
  r.rss_kb = status_kb(s, "VmRSS:");
  r.hwm_kb = status_kb(s, "VmHWM:");
  print(r);
  return r;
}

bool kubectl(const Server& s, std::vector<std::string> args) {
  args.insert(args.begin(), "kubectl");
  auto r = ct::run(args, {{"KUBECONFIG", s.kubeconfig}, {"HOME", s.dir}}, std::chrono::minutes(10));
  if (!r.status.success())
    std::fprintf(stderr, "kubectl failed: %s\n", r.err.substr(0, 2000).c_str());
  return r.status.success();
}

} // namespace

int main(int argc, char** argv) {
  int n = 500;
  bool per_object = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--objects" && i + 1 < argc)
      n = std::stoi(argv[++i]);
    else if (a == "--no-per-object")
      per_object = false;
    else {
      std::fprintf(stderr, "usage: sandbox_bench [--objects N] [--no-per-object]\n");
      return 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  ct::TempDir root("capstan-sandbox-bench");
  auto manifests = root.path() / "manifests";
  for (int i = 0; i < n; ++i)
    ct::write_file(manifests / ("obj-" + std::to_string(i) + ".yaml"),
                   ct::bench_object_yaml(i, "sandbox"));
  std::printf(
      "capstan-sandbox under kubectl apply of %d objects (40%% ConfigMaps, 30%% Deployments, "
      "30%% Services)\n\n",
      n);

  // Baseline: the server's request ceiling on one keep-alive connection (GET of one object).
  Server base = start(root, "baseline");
  Result get_loop;
  {
    auto c = client(base);
    c->Post("/api/v1/namespaces/default/configmaps", R"({"metadata":{"name":"probe"}})",
            "application/json");
    get_loop = measure("baseline: GET loop, one keep-alive conn", base, [&] {
      for (int i = 0; i < 5000; ++i)
        if (!c->Get("/api/v1/namespaces/default/configmaps/probe")) return false;
      return true;
    });
  }
  base.daemon.reset();

  Server a = start(root, "client-side");
  Result csa = measure("kubectl apply -f DIR (client-side)", a, [&] {
    return kubectl(a, {"apply", "-f", manifests.string()});
  });
  Result again = measure("kubectl apply -f DIR again (all unchanged)", a, [&] {
    return kubectl(a, {"apply", "-f", manifests.string()});
  });
  a.daemon.reset();

  Server b = start(root, "server-side");
  Result ssa = measure("kubectl apply --server-side -f DIR", b, [&] {
    return kubectl(b, {"apply", "--server-side", "-f", manifests.string()});
  });
  b.daemon.reset();

  Result one;
  if (per_object) {
    Server c = start(root, "per-object");
    one = measure("kubectl apply -f FILE, once per object", c, [&] {
      for (int i = 0; i < n; ++i)
        if (!kubectl(
                c, {"apply", "-f", (manifests / ("obj-" + std::to_string(i) + ".yaml")).string()}))
          return false;
      return true;
    });
    c.daemon.reset();
  }
  std::printf("\nratios (same run):\n");
  std::printf("  client-side apply request rate / GET-loop ceiling: %.3f\n",
              (csa.requests / csa.seconds) / (get_loop.requests / get_loop.seconds));
  std::printf("  server-side apply request rate / GET-loop ceiling: %.3f\n",
              (ssa.requests / ssa.seconds) / (get_loop.requests / get_loop.seconds));
  std::printf("  server-side wall / client-side wall:               %.3f\n",
              ssa.seconds / csa.seconds);
  if (per_object)
    std::printf("  one call per object wall / one call for the dir:  %.2f\n",
                one.seconds / csa.seconds);
  std::printf("  Capstan's own client (K8sApply) on the same objects: build/bin/kube_bench\n");
  return csa.ok && ssa.ok && again.ok && (!per_object || one.ok) ? 0 : 1;
}
