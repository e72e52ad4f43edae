// The sandbox process helper.
#include "capstan/testing/sandbox.h"

#include <csignal>
#include <stdexcept>

namespace capstan::testing {

namespace fs = std::filesystem;

Sandbox::Sandbox(fs::path data_dir, const std::string& config_yaml)
    : data_dir_(std::move(data_dir)) {
  fs::create_directories(data_dir_);
  if (!config_yaml.empty()) write_file(data_dir_ / "config.yaml", config_yaml);
  start();
}

Sandbox::~Sandbox() {
  daemon_.reset();
}

void Sandbox::start(int port) {
  ++starts_;
  daemon_ = std::make_unique<Daemon>(
      std::vector<std::string>{binary("capstan-sandbox").string(), "--data-dir", data_dir_.string(),
                               "--port", std::to_string(port)},
      data_dir_.parent_path() /
          (data_dir_.filename().string() + "-sandbox-" + std::to_string(starts_) + ".log"));
  if (!daemon_->wait_for_log("listening on https://", std::chrono::seconds(30))) {
    throw std::runtime_error("capstan-sandbox did not start:\n" + daemon_->log());
  }
}

void Sandbox::stop() {
  if (!daemon_) return;
  daemon_->child().signal(SIGTERM);
  daemon_->child().wait_for(std::chrono::seconds(10));
  daemon_.reset();
}

int Sandbox::port() const {
  return std::stoi(read_file(data_dir_ / "port"));
}

std::string Sandbox::server() const {
  return "https://127.0.0.1:" + std::to_string(port());
}

std::string Sandbox::token() const {
  std::string t = read_file(data_dir_ / "token");
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

std::string Sandbox::log() const {
  return daemon_ ? daemon_->log() : std::string();
}

process::RunResult Sandbox::kubectl(std::vector<std::string> args,
                                    std::optional<std::string> stdin_data,
                                    std::chrono::seconds timeout) const {
  args.insert(args.begin(), "kubectl");
  return run(args, {{"KUBECONFIG", kubeconfig().string()}, {"HOME", data_dir_.string()}}, timeout,
             "", std::move(stdin_data));
}

pid_t Sandbox::pid() const {
  return daemon_ ? daemon_->child().pid() : -1;
}

long long Sandbox::requests() const {
  auto r = kubectl({"get", "--raw", "/metrics"});
  const std::string name = "\ncapstan_sandbox_requests_total ";
  auto pos = ("\n" + r.out).find(name);
  if (!r.status.success() || pos == std::string::npos) return -1;
  return std::stoll(("\n" + r.out).substr(pos + name.size())) - 1;
}

std::string bench_object_yaml(int i, const std::string& label) {
  std::string n = std::to_string(i);
  switch (i % 10) {
  case 0:
  case 1:
  case 2:
  case 3:
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-" + n +
           "\n  labels: {bench: " + label + "}\ndata:\n  key: value-" + n + "\n  other: \"" +
           std::string(200, 'x') + "\"\n";
  case 4:
  case 5:
  case 6:
    return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-" + n +
           "\n  labels: {bench: " + label +
           "}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: "
           "{app: app-" +
           n + "}\n  template:\n    metadata:\n      labels: {app: app-" + n +
           "}\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.25\n        "
           "ports:\n"
           "        - containerPort: 80\n        env:\n        - {name: INDEX, value: \"" +
           n + "\"}\n";
  default:
    return "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-" + n +
           "\n  labels: {bench: " + label + "}\nspec:\n  selector: {app: app-" + n +
           "}\n  ports:\n  - port: 80\n    targetPort: 8080\n";
  }
}

} // namespace capstan::testing
