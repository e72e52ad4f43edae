// A coordinator and delegates as real processes on loopback (port 0, temp dirs), with an HTTP
// client for the coordinator's API.
#pragma once

#include <httplib.h>
#include <signal.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "capstan/testing/testing.h"

namespace capstan::testing {

class Stack {
public:
  explicit Stack(const std::filesystem::path& root) : root_(root) {}

  // Starts (or restarts) the coordinator on the same data dir; waits for its endpoint file.
  void start_coordinator() {
    auto data = root_ / "coordinator";
    std::filesystem::remove(data / "coordinator.json");
    std::vector<std::string> argv = {binary("capstan-coordinator").string(),
                                     "--data-dir",
                                     data.string(),
                                     "--api-port",
                                     "0",
                                     "--bind",
                                     wire_.empty() ? "tcp://127.0.0.1:0" : wire_,
                                     "--heartbeat-interval",
                                     "200ms",
                                     "--delegate-wait",
                                     "5s"};
    argv.insert(argv.end(), coordinator_flags.begin(), coordinator_flags.end());
    coordinator_ = std::make_unique<Daemon>(
        argv, root_ / ("coordinator-" + std::to_string(++starts_) + ".log"));
    if (!wait_until([&] { return std::filesystem::exists(data / "coordinator.json"); })) {
      throw std::runtime_error("coordinator did not start:\n" + coordinator_->log());
    }
    auto info = nlohmann::json::parse(read_file(data / "coordinator.json"));
    api_ = info["api"];
    wire_ = info["wire"];
    token_ = read_file(info["tokenFile"].get<std::string>());
    while (!token_.empty() && token_.back() == '\n') token_.pop_back();
    delegate_token_file_ = info["delegateTokenFile"].get<std::string>();
    wire_key_file_ = info["wirePublicKeyFile"].get<std::string>();
  }

  void kill_coordinator() {
    coordinator_->child().signal(SIGKILL);
    coordinator_->child().wait_for(std::chrono::seconds(10));
  }

  // The capstan CLI against this coordinator, signed in as `user`.
  capstan::process::RunResult cli(const std::vector<std::string>& args,
                                  const std::string& user = "alice") {
    std::vector<std::string> argv = {
        binary("capstan").string(), "--server", api_, "--token", token_, "--user", user};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  Daemon& start_delegate(const std::string& name,
                         const std::vector<std::filesystem::path>& plugin_dirs = {plugin_dir()},
                         int slots = 1, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {binary("capstan-delegate").string(),
                                     "--coordinator",
                                     wire_,
                                     "--name",
                                     name,
                                     "--slots",
                                     std::to_string(slots),
                                     "--data-dir",
                                     (root_ / ("delegate-" + name)).string(),
                                     "--heartbeat-interval",
                                     "200ms",
                                     "--token-file",
                                     delegate_token_file_,
                                     "--coordinator-key-file",
                                     wire_key_file_};
    for (const auto& d : extra) argv.push_back(d);
    for (const auto& d : plugin_dirs) {
      argv.push_back("--plugin-dir");
      argv.push_back(d.string());
    }
    delegates_.push_back(std::make_unique<Daemon>(argv, root_ / ("delegate-" + name + ".log")));
    return *delegates_.back();
  }

  nlohmann::json get(const std::string& path) {
    auto res = client().Get(path);
    if (!res) throw std::runtime_error("GET " + path + ": " + httplib::to_string(res.error()));
    last_status_ = res->status;
    return nlohmann::json::parse(res->body);
  }
  nlohmann::json del(const std::string& path) {
    auto res = client().Delete(path);
    if (!res) throw std::runtime_error("DELETE " + path + ": " + httplib::to_string(res.error()));
    last_status_ = res->status;
    return nlohmann::json::parse(res->body);
  }
  nlohmann::json post(const std::string& path, const nlohmann::json& body) {
    auto res = client().Post(path, body.dump(), "application/json");
    if (!res) throw std::runtime_error("POST " + path + ": " + httplib::to_string(res.error()));
    last_status_ = res->status;
    return nlohmann::json::parse(res->body);
  }
  // A request made as a user (the CLI sends its user name in X-Capstan-User).
  nlohmann::json post_as(const std::string& user, const std::string& path,
                         const nlohmann::json& body) {
    httplib::Headers headers = {{"X-Capstan-User", user}};
    auto res = client().Post(path, headers, body.dump(), "application/json");
    if (!res) throw std::runtime_error("POST " + path + ": " + httplib::to_string(res.error()));
    last_status_ = res->status;
    return nlohmann::json::parse(res->body);
  }
  // Applies YAML text as one file.
  nlohmann::json apply_text(const std::string& name, const std::string& text) {
    return post("/api/v1/apply", {{"files", {{{"name", name}, {"content", text}}}}});
  }
  int last_status() const { return last_status_; }

  int connected_delegates() {
    int n = 0;
    auto all = get("/api/v1/delegates");
    for (const auto& d : all["items"]) n += d["connected"].get<bool>();
    return n;
  }
  bool wait_for_delegates(int n) {
    return wait_until([&] { return connected_delegates() == n; }, std::chrono::seconds(20));
  }

  nlohmann::json apply_file(const std::filesystem::path& file) {
    return post("/api/v1/apply",
                {{"files", {{{"name", file.filename().string()}, {"content", read_file(file)}}}}});
  }

  // Waits for the execution to end and returns it.
  nlohmann::json wait_for_end(const std::string& id) {
    nlohmann::json e;
    std::int64_t revision = 0;
    for (int i = 0; i < 60; ++i) {
      auto w = get("/api/v1/executions/" + id +
                   "/watch?wait=5&after=999999999&revision=" + std::to_string(revision));
      e = w["execution"];
      revision = e["revision"];
      std::string s = e["status"];
      if (s == "Succeeded" || s == "Failed" || s == "Aborted") return e;
    }
    throw std::runtime_error("execution " + id + " did not end: " + e.dump());
  }

  std::string logs(const std::string& id) {
    std::string out;
    auto all = get("/api/v1/executions/" + id + "/logs?limit=10000");
    for (const auto& l : all["lines"]) {
      out += l["step"].get<std::string>() + " | " + l["line"].get<std::string>() + "\n";
    }
    return out;
  }

  Daemon& coordinator() { return *coordinator_; }
  const std::string& wire() const { return wire_; }
  const std::string& delegate_token_file() const { return delegate_token_file_; }
  const std::string& wire_key_file() const { return wire_key_file_; }
  const std::string& api() const { return api_; }
  const std::string& api_token() const { return token_; }
  // Extra coordinator flags for the next start_coordinator().
  std::vector<std::string> coordinator_flags;

private:
  httplib::Client& client() {
    if (!client_ || client_host_ != api_) {
      client_ = std::make_unique<httplib::Client>(api_);
      client_->set_bearer_token_auth(token_);
      client_->set_read_timeout(30, 0);
      client_host_ = api_;
    }
    return *client_;
  }

  std::filesystem::path root_;
  std::unique_ptr<Daemon> coordinator_;
  std::vector<std::unique_ptr<Daemon>> delegates_;
  std::string api_, wire_, token_, client_host_, delegate_token_file_, wire_key_file_;
  std::unique_ptr<httplib::Client> client_;
  int starts_ = 0;
  int last_status_ = 0;
};

} // namespace capstan::testing
