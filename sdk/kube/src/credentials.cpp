// Credentials: static, token files and exec credential plugins.
#include "credentials.h"

#include <capstan/process/subprocess.h>
#include <nlohmann/json.hpp>

#include <ctime>
#include <fstream>
#include <sstream>

#include "capstan/kube/base64.h"
#include "capstan/kube/error.h"

namespace capstan::kube::detail {
namespace {

using nlohmann::json;
using Clock = std::chrono::system_clock;

// Refresh an exec credential this long before it expires, so no request goes out with a token
// that dies in flight.
constexpr auto kExpiryMargin = std::chrono::seconds(10);
constexpr auto kTokenFileRereadEvery = std::chrono::minutes(1);
constexpr auto kExecTimeout = std::chrono::seconds(60);

Error auth_error(const std::string& message) {
  return Error(ErrorKind::kAuthentication, message);
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

std::string last_line(const std::string& text) {
  std::string t = trim(text);
  auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

} // namespace

std::optional<Clock::time_point> parse_rfc3339(const std::string& text) {
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) !=
      6) {
    return std::nullopt;
  }
  std::string rest = text.substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    std::size_t i = 1;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) ++i;
    rest = rest.substr(i);
  }
  long offset = 0;
  if (rest == "Z" || rest == "z") {
    offset = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = std::atoi(rest.substr(1, 2).c_str());
    int om = std::atoi(rest.substr(4, 2).c_str());
    offset = (oh * 3600L + om * 60L) * (rest[0] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  // system_clock counts nanoseconds in 64 bits (up to 2262): later times are clamped to the
  // latest point it can hold rather than wrapping into the past.
  constexpr std::time_t kLatest = 9'000'000'000; // year 2255
  t -= offset;
  if (t > kLatest) return Clock::time_point::max();
  return Clock::from_time_t(t);
}

Credentials::Credentials(const ClusterConfig& config) : config_(config) {}

int Credentials::exec_runs() const {
  std::lock_guard lock(mutex_);
  return exec_runs_;
}

bool Credentials::invalidate() {
  std::lock_guard lock(mutex_);
  if (config_.exec) {
    have_cached_ = false;
    return true;
  }
  if (!config_.token_file.empty()) {
    token_read_ = {};
    return true;
  }
  return false;
}

CredentialSet Credentials::current(const std::function<bool()>& cancelled) {
  std::lock_guard lock(mutex_);
  if (config_.exec) {
    bool fresh = have_cached_ && (!expires_ || Clock::now() + kExpiryMargin < *expires_);
    if (!fresh) {
      cached_ = run_exec(cancelled);
      have_cached_ = true;
    }
    return cached_;
  }
  if (!have_cached_) {
    cached_.bearer = config_.token;
    cached_.cert_pem = config_.client_cert_pem;
    cached_.key_pem = config_.client_key_pem;
    cached_.username = config_.username;
    cached_.password = config_.password;
    have_cached_ = true;
  }
  if (!config_.token_file.empty()) {
    auto now = std::chrono::steady_clock::now();
    if (token_read_ == std::chrono::steady_clock::time_point{} ||
        now - token_read_ > kTokenFileRereadEvery) {
      std::ifstream in(config_.token_file, std::ios::binary);
      if (!in) throw auth_error("cannot read the token file " + config_.token_file);
      std::ostringstream ss;
      ss << in.rdbuf();
      std::string token = trim(ss.str());
      if (token.empty()) throw auth_error("the token file " + config_.token_file + " is empty");
      cached_.bearer = token;
      token_read_ = now;
    }
  }
  return cached_;
}

CredentialSet Credentials::run_exec(const std::function<bool()>& cancelled) {
  const ExecConfig& x = *config_.exec;
  ++exec_runs_;
  json info = {{"apiVersion", x.api_version},
               {"kind", "ExecCredential"},
               {"spec", {{"interactive", false}}}};
  if (x.provide_cluster_info) {
    json cluster = {{"server", config_.server}};
    if (!config_.ca_pem.empty()) {
      // ExecCredential carries the CA as bytes, which JSON encodes as base64.
      cluster["certificate-authority-data"] = base64_encode(config_.ca_pem);
    }
    if (config_.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    if (!config_.tls_server_name.empty()) cluster["tls-server-name"] = config_.tls_server_name;
    info["spec"]["cluster"] = cluster;
  }
  process::Options opts;
  opts.argv.push_back(x.command);
  opts.argv.insert(opts.argv.end(), x.args.begin(), x.args.end());
  for (const auto& [k, v] : x.env) opts.env[k] = v;
  opts.env["KUBERNETES_EXEC_INFO"] = info.dump();
  process::RunControl control;
  control.timeout = kExecTimeout;
  control.cancelled = cancelled;
  process::RunResult r;
  std::string who = "the exec credential plugin '" + x.command + "'";
  try {
    r = process::run(opts, control);
  } catch (const process::SpawnError& e) {
    std::string hint = x.install_hint.empty() ? "" : " (" + trim(x.install_hint) + ")";
    throw auth_error("cannot run " + who + ": " + e.what() + hint);
  }
  if (r.cancelled) throw Error(ErrorKind::kCancelled, who + " was cancelled");
  if (r.timed_out) throw auth_error(who + " did not finish within 60s");
  if (!r.status.success()) {
    std::string err = last_line(r.err);
    throw auth_error(who + " failed (" + r.status.describe() + ")" +
                     (err.empty() ? "" : ": " + err.substr(0, 300)));
  }
  json cred = json::parse(r.out, nullptr, false);
  if (!cred.is_object() || cred.value("kind", "") != "ExecCredential") {
    throw auth_error(who + " did not print an ExecCredential object");
  }
  if (cred.value("apiVersion", "") != x.api_version) {
    throw auth_error(who + " answered with apiVersion '" + cred.value("apiVersion", "") +
                     "' but the kubeconfig asks for '" + x.api_version + "'");
  }
  const json status = cred.value("status", json::object());
  CredentialSet out;
  out.bearer = status.value("token", "");
  out.cert_pem = status.value("clientCertificateData", "");
  out.key_pem = status.value("clientKeyData", "");
  if (out.bearer.empty() && (out.cert_pem.empty() || out.key_pem.empty())) {
    throw auth_error(who + " returned neither a token nor a client certificate and key");
  }
  expires_.reset();
  if (std::string exp = status.value("expirationTimestamp", ""); !exp.empty()) {
    expires_ = parse_rfc3339(exp);
    if (!expires_) throw auth_error(who + " returned a malformed expirationTimestamp");
  }
  return out;
}

} // namespace capstan::kube::detail
