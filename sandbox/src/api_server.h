// The HTTP front end: authentication, routing, content negotiation and watches.
#pragma once

#include "capstan/sandbox/cluster.h"

#include <httplib.h>

#include <atomic>
#include <string>

namespace capstan::sandbox {

class ApiServer {
public:
  ApiServer(Cluster& cluster, std::string token, bool log_requests);
  // Installs the handlers on server.
  void install(httplib::Server& server);
  void set_address(std::string address) { address_ = std::move(address); }
  void shutdown() { stopping_ = true; }

private:
  void handle(const httplib::Request& req, httplib::Response& res);
  void serve(const httplib::Request& req, httplib::Response& res);
  bool authenticated(const httplib::Request& req) const;

  Cluster& cluster_;
  std::string token_;
  bool log_requests_;
  std::string address_;
  std::atomic<bool> stopping_{false};
  // Served at /metrics (Prometheus text format) for benchmarks and operators.
  std::atomic<std::uint64_t> requests_{0}, watches_{0}, errors_{0};
};

} // namespace capstan::sandbox
