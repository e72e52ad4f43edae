// The coordinator's HTTP+JSON API (documented in docs/api.md), guarded by a bearer token.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "engine/change_feed.h"
#include "engine/engine.h"
#include "store/store.h"

namespace capstan::api {

struct ApiOptions {
  std::string host = "127.0.0.1";
  int port = 7780; // 0 picks a free port
  std::string token;
  std::string coordinator_id;
  // Git hosts' webhooks (POST /api/v1/webhooks/git) must prove they know it: GitHub's
  // X-Hub-Signature-256 or GitLab's X-Gitlab-Token. Empty: payloads are taken unsigned.
  std::string webhook_secret;
  std::string version;
  // The Prometheus text served at /metrics (no token needed, like /healthz).
  std::function<std::string()> metrics;
};

class HttpApi {
public:
  HttpApi(store::Store& store, engine::Engine& engine, engine::ChangeFeed& feed,
          ApiOptions options);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Binds (throws std::runtime_error naming the address when it cannot) and serves on a thread.
  void start();
  void stop();
  int port() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace capstan::api
