// Errors from the Kubernetes client: the API server's Status objects, typed by reason, and
// transport failures typed as connectivity or authentication problems.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace capstan::kube {

enum class ErrorKind {
  // From the API server's Status (reason, else HTTP status).
  kBadRequest,            // 400: malformed request or object
  kUnauthorized,          // 401: no or wrong credentials
  kForbidden,             // 403: authenticated, not allowed
  kNotFound,              // 404: no such object (or resource type)
  kMethodNotAllowed,      // 405
  kConflict,              // 409: stale resourceVersion, field manager conflict
  kAlreadyExists,         // 409 with reason AlreadyExists
  kExpired,               // 410: resourceVersion too old (watch/list must start over)
  kRequestEntityTooLarge, // 413
  kUnsupportedMediaType,  // 415
  kInvalid,               // 422: the object failed validation; causes() names the fields
  kTooManyRequests,       // 429 after the retries ran out
  kInternalError,         // 500
  kServiceUnavailable,    // 503
  kServerTimeout,         // 504 or reason Timeout
  kServerError,           // any other status >= 400
  // Client side.
  kUnsupportedKind, // the cluster does not serve the kind (discovery); message lists what it does
  kConnectivity,    // DNS, refused/reset connection, TLS handshake, timeouts talking to the server
  kAuthentication,  // credentials could not be obtained or were refused; server certificate
                    // not trusted
  kConfiguration,   // a kubeconfig or in-cluster setup that cannot be used
  kTimeout,         // a client-side deadline passed (a wait, a request)
  kCancelled,       // the caller's cancel hook turned true
  kProtocol,        // the server answered with something that is not what the API promises
};

std::string_view to_string(ErrorKind kind); // "NotFound", "Connectivity", ...

// One entry of a Status's details.causes: which field failed and why.
struct StatusCause {
  std::string reason; // FieldValueRequired, FieldValueInvalid, FieldManagerConflict, ...
  std::string message;
  std::string field; // "spec.replicas", "metadata.name", ...
};

class Error : public std::runtime_error {
public:
  Error(ErrorKind kind, const std::string& message, int http_status = 0)
      : std::runtime_error(message), kind_(kind), http_status_(http_status) {}

  ErrorKind kind() const noexcept { return kind_; }
  int http_status() const noexcept { return http_status_; } // 0 for client-side errors
  // The Status's reason as the server wrote it ("NotFound", "Invalid", ...); may be empty.
  const std::string& reason() const noexcept { return reason_; }
  const std::vector<StatusCause>& causes() const noexcept { return causes_; }
  // The server's Retry-After, when it sent one.
  std::optional<std::chrono::seconds> retry_after() const noexcept { return retry_after_; }

  Error& with_reason(std::string r) {
    reason_ = std::move(r);
    return *this;
  }
  Error& with_causes(std::vector<StatusCause> c) {
    causes_ = std::move(c);
    return *this;
  }
  Error& with_retry_after(std::optional<std::chrono::seconds> s) {
    retry_after_ = s;
    return *this;
  }

  bool is(ErrorKind k) const noexcept { return kind_ == k; }

private:
  ErrorKind kind_;
  int http_status_;
  std::string reason_;
  std::vector<StatusCause> causes_;
  std::optional<std::chrono::seconds> retry_after_;
};

// The Error a response with `http_status` and `body` (a Status object, or anything else)
// stands for. `what` names the request for the message ("PATCH deployments/web").
Error error_from_response(int http_status, std::string_view body, const std::string& what,
                          std::optional<std::chrono::seconds> retry_after = std::nullopt);

// True when a failed call is worth repeating as is: 429, 500 with Retry-After, 502, 503, 504,
// and connectivity errors.
bool is_retryable(const Error& e);

} // namespace capstan::kube
