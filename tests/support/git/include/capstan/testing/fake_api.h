// A scripted REST server on loopback that records every request (header-only; link
// PkgConfig::HTTPLIB), for tests of API clients: SCM providers, webhooks.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace capstan::testing {

struct Recorded {
  std::string method;
  std::string path;   // decoded
  std::string target; // raw, with the query
  httplib::Headers headers;
  std::string body;
  nlohmann::json json() const {
    return body.empty() ? nlohmann::json() : nlohmann::json::parse(body);
  }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class FakeApi {
public:
  using Handler = std::function<void(const Recorded&, httplib::Response&)>;
  explicit FakeApi(Handler handler) : handler_(std::move(handler)) {
    auto h = [this](const httplib::Request& req, httplib::Response& res) {
      Recorded r{req.method, req.path, req.target, req.headers, req.body};
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(r);
      }
      handler_(r, res);
    };
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
      const std::string method = m;
      if (method == "GET") server_.Get(".*", h);
      if (method == "POST") server_.Post(".*", h);
      if (method == "PUT") server_.Put(".*", h);
      if (method == "PATCH") server_.Patch(".*", h);
      if (method == "DELETE") server_.Delete(".*", h);
    }
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~FakeApi() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& prefix = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + prefix;
  }
  std::vector<Recorded> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

private:
  Handler handler_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::vector<Recorded> requests_;
};

inline void reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.is_null() ? "" : body.dump(), "application/json; charset=utf-8");
}

} // namespace capstan::testing
