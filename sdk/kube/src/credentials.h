// The credentials requests carry: static ones from the config, a token file re-read as it
// rotates, or an exec plugin's ExecCredential cached until it expires.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "capstan/kube/config.h"

namespace capstan::kube::detail {

struct CredentialSet {
  std::string bearer;
  std::string cert_pem;
  std::string key_pem;
  std::string username;
  std::string password;
};

class Credentials {
public:
  explicit Credentials(const ClusterConfig& config);

  // What to send now. Runs the exec plugin when nothing valid is cached, re-reads a token file
  // once a minute. Throws Error(kAuthentication) when the plugin fails or says nothing usable.
  CredentialSet current(const std::function<bool()>& cancelled);
  // The server refused what we sent (401): fetch afresh next time. Returns whether there is
  // anything to refresh (an exec plugin or a token file); static credentials are not retried.
  bool invalidate();

  // How many times the exec plugin ran (for tests of the cache).
  int exec_runs() const;

private:
  CredentialSet run_exec(const std::function<bool()>& cancelled);

  const ClusterConfig& config_;
  mutable std::mutex mutex_;
  CredentialSet cached_;
  bool have_cached_ = false;
  std::optional<std::chrono::system_clock::time_point> expires_;
  std::chrono::steady_clock::time_point token_read_{};
  int exec_runs_ = 0;
};

// RFC 3339 ("2024-05-01T10:00:00Z", "...+02:00", fractions) → time; nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& text);

} // namespace capstan::kube::detail
