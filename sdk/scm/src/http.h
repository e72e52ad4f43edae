// A small JSON-over-HTTPS client for SCM REST APIs (libcurl): timeouts, rate-limit waits,
// status → typed errors. Tokens travel in headers and are never logged or put in errors.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "capstan/scm/provider.h"

namespace capstan::scm::detail {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers; // lower-case names
  std::string body;
  nlohmann::json json() const; // null when the body is empty or not JSON
  std::string header(const std::string& lower_name) const;
};

class RestClient {
public:
  // auth_headers: e.g. {"Authorization: Bearer …"}; they are the only place the token lives.
  RestClient(const HttpProviderConfig& config, std::string base_url,
             std::vector<std::string> auth_headers, std::string provider);

  // Sends one request (JSON body when not null), waiting out rate limits within max_wait;
  // non-2xx statuses throw Error with the provider's message. `what` names the operation.
  HttpResponse send(const std::string& method, const std::string& path_or_url,
                    const nlohmann::json& body, const std::string& what);
  // The same without throwing on HTTP errors (rate limits are still handled).
  HttpResponse send_raw(const std::string& method, const std::string& path_or_url,
                        const nlohmann::json& body);
  [[noreturn]] void fail(const HttpResponse& response, const std::string& what) const;
  const HttpProviderConfig& config() const { return config_; }
  void sleep_for(std::chrono::milliseconds d, const std::string& why);
  std::chrono::milliseconds waited() const { return waited_; }

private:
  HttpResponse perform(const std::string& method, const std::string& url, const std::string& body);
  HttpProviderConfig config_;
  std::string base_;
  std::vector<std::string> auth_;
  std::string provider_;
  std::chrono::milliseconds waited_{0};
};

std::string url_encode(const std::string& s);
// j[key] when it is a string, else "" (providers send null for absent values).
std::string string_field(const nlohmann::json& j, const char* key);

} // namespace capstan::scm::detail
