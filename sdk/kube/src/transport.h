// HTTP to one API server over libcurl: TLS and credentials from a ClusterConfig, a pool of
// keep-alive handles shared by threads, and streamed responses for watches.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "capstan/kube/client.h"
#include "capstan/kube/config.h"
#include "credentials.h"

namespace capstan::kube::detail {

struct HttpRequest {
  std::string method = "GET";
  std::string path; // path and query, appended to the server URL
  std::string body;
  std::string content_type;
  std::string accept = "application/json";
  std::chrono::milliseconds timeout{0}; // 0: none (streams)
};

struct HttpResult {
  CURLcode code = CURLE_OK;
  bool connected = false; // the request may have reached the server
  std::string error;      // curl's description when code != CURLE_OK
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers; // names lower-cased; the last value wins
};

class Transport {
public:
  Transport(ClusterConfig config, const ClientOptions& options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // One request on a pooled handle (reusing its open connection). Polls `cancelled` while the
  // transfer runs; a cancelled transfer ends with CURLE_ABORTED_BY_CALLBACK.
  HttpResult perform(const HttpRequest& request, const std::function<bool()>& cancelled);

  // A streamed request: `on_data` gets each piece of the body as it arrives (for a 2xx answer;
  // other answers are collected into the result's body) and returns false to stop. Stops within
  // ~100 ms of `cancelled` turning true.
  HttpResult stream(const HttpRequest& request,
                    const std::function<bool(std::string_view)>& on_data,
                    const std::function<bool()>& cancelled);

  Credentials& credentials() { return credentials_; }
  const ClusterConfig& config() const { return config_; }

private:
  CURL* take();
  void give_back(CURL* handle);
  void prepare(CURL* handle, const HttpRequest& request, curl_slist*& headers,
               const CredentialSet& creds);

  ClusterConfig config_;
  ClientOptions options_;
  Credentials credentials_;
  std::string base_url_;             // the URL requests are made against
  curl_slist* connect_to_ = nullptr; // CURLOPT_CONNECT_TO when tls-server-name is set
  CURLSH* share_ = nullptr;
  std::mutex share_locks_[CURL_LOCK_DATA_LAST];
  std::mutex pool_mutex_;
  std::vector<CURL*> idle_;

  friend void share_lock(CURL*, curl_lock_data, curl_lock_access, void*);
  friend void share_unlock(CURL*, curl_lock_data, void*);
};

// The error kind a failed transfer stands for (Connectivity, Authentication, Cancelled,
// Timeout), with a message naming the server.
Error transport_error(const HttpResult& r, const std::string& server, const std::string& what);

} // namespace capstan::kube::detail
