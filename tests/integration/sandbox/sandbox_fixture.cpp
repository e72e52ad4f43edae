// The per-test sandbox process and kubectl runner.
#include "sandbox_fixture.h"

#include <csignal>
#include <regex>

namespace capstan::sandbox::testing {

namespace ct = capstan::testing;

void SandboxTest::SetUp() {
  if (ct::run({"sh", "-c", "command -v kubectl"}).status.exit_code != 0)
    GTEST_SKIP() << "kubectl is not installed (scripts/setup installs it)";
  dir_ = std::make_unique<ct::TempDir>("capstan-sandbox-test");
  data_dir_ = (dir_->path() / "data").string();
  kubeconfig_ = data_dir_ + "/kubeconfig";
  // Fast simulated pods keep the suite short; behaviour is the same as with the defaults.
  ct::write_file(dir_->path() / "data" / "config.yaml",
                 "podReadyDelay: 30ms\npodReadyJitter: 30ms\npodTerminationDelay: 20ms\n"
                 "jobDuration: 100ms\ncrashBackoff: 200ms\nnodes: 2\n");
  start_sandbox();
}

void SandboxTest::TearDown() {
  daemon_.reset();
}

void SandboxTest::start_sandbox() {
  ++starts_;
  daemon_ =
      std::make_unique<ct::Daemon>(std::vector<std::string>{ct::binary("capstan-sandbox").string(),
                                                            "--data-dir", data_dir_, "--port", "0"},
                                   dir_->path() / ("sandbox-" + std::to_string(starts_) + ".log"));
  ASSERT_TRUE(daemon_->wait_for_log("listening on https://127.0.0.1:")) << daemon_->log();
}

void SandboxTest::stop_sandbox() {
  daemon_->child().signal(SIGTERM);
  auto status = daemon_->child().wait_for(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value()) << "the sandbox did not stop on SIGTERM";
  EXPECT_TRUE(status->success()) << status->describe() << "\n" << daemon_->log();
}

process::RunResult SandboxTest::kubectl(std::vector<std::string> args,
                                        std::optional<std::string> stdin_data,
                                        std::chrono::seconds timeout) {
  args.insert(args.begin(), "kubectl");
  return ct::run(args, {{"KUBECONFIG", kubeconfig_}, {"HOME", dir_->path().string()}}, timeout, "",
                 std::move(stdin_data));
}

std::string SandboxTest::kubectl_ok(std::vector<std::string> args,
                                    std::optional<std::string> stdin_data) {
  std::string cmd;
  for (const auto& a : args) cmd += " " + a;
  auto r = kubectl(std::move(args), std::move(stdin_data));
  EXPECT_TRUE(r.status.success()) << "kubectl" << cmd << " failed: " << r.status.describe()
                                  << "\nstdout: " << r.out << "\nstderr: " << r.err;
  return r.out;
}

nlohmann::json SandboxTest::get_json(std::vector<std::string> args) {
  args.push_back("-o");
  args.push_back("json");
  std::string out = kubectl_ok(std::move(args));
  auto j = nlohmann::json::parse(out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << out;
  return j;
}

std::string SandboxTest::manifest(const std::string& name, const std::string& yaml) {
  auto p = dir_->path() / name;
  ct::write_file(p, yaml);
  return p.string();
}

std::string app_manifest(const std::string& image, int replicas) {
  return R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels: {app: web}
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: )" +
         std::to_string(replicas) +
         R"(
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: )" +
         image +
         R"(
        ports:
        - containerPort: 80
          name: http
        env:
        - name: MODE
          value: prod
        resources:
          limits: {cpu: 100m, memory: 64Mi}
        readinessProbe:
          httpGet: {path: /healthz, port: 80}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: http
)";
}

} // namespace capstan::sandbox::testing
