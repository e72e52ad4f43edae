// Typed Git errors: each failure carries a kind that pipeline steps map to failure strategies.
#pragma once

#include <stdexcept>
#include <string>

namespace capstan::git {

enum class ErrorKind {
  kAuthentication, // credentials missing, wrong or refused (HTTP 401/403, SSH auth)
  kConnectivity,   // unreachable host, refused connection, DNS failure, TLS/host key trouble
  kNotFound,       // repository, ref, revision or path that does not exist
  kConflict,       // merge, rebase or revert conflicts; a ref that changed under us
  kNonFastForward, // the remote branch moved on; a push or fast-forward merge is impossible
  kInvalidInput,   // malformed URL, ref name, revision or option
  kTimeout,        // a deadline passed (waiting for a repository lock, an operation)
  kCancelled,      // the caller's cancellation hook said stop
  kInternal,       // anything else (corrupt repository, disk full, ...)
};

// "Authentication", "Connectivity", ... (the names failure strategies match on).
const char* to_string(ErrorKind kind);

// Messages never contain credentials: URLs are shown without their user-info and secret values
// handed to the library are masked.
class Error : public std::runtime_error {
public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

private:
  ErrorKind kind_;
};

} // namespace capstan::git
