// Error types for failure strategies.
#include "errors.h"

namespace capstan::plugins::kubernetes {

using plugin::v1::ErrorType;

ErrorType error_type(kube::ErrorKind kind) {
  using K = kube::ErrorKind;
  switch (kind) {
  case K::kUnauthorized:
  case K::kAuthentication:
  case K::kConfiguration:
    return plugin::v1::ERROR_TYPE_AUTHENTICATION;
  case K::kForbidden:
    return plugin::v1::ERROR_TYPE_AUTHORIZATION;
  case K::kConnectivity:
  case K::kServerTimeout:
  case K::kServiceUnavailable:
    return plugin::v1::ERROR_TYPE_CONNECTIVITY;
  case K::kTimeout:
    return plugin::v1::ERROR_TYPE_TIMEOUT;
  case K::kBadRequest:
  case K::kInvalid:
  case K::kUnsupportedKind:
  case K::kAlreadyExists:
  case K::kRequestEntityTooLarge:
  case K::kUnsupportedMediaType:
  case K::kMethodNotAllowed:
    return plugin::v1::ERROR_TYPE_INVALID_INPUT;
  default:
    return plugin::v1::ERROR_TYPE_UNKNOWN;
  }
}

ErrorType error_type(git::ErrorKind kind) {
  using K = git::ErrorKind;
  switch (kind) {
  case K::kAuthentication:
    return plugin::v1::ERROR_TYPE_AUTHENTICATION;
  case K::kConnectivity:
    return plugin::v1::ERROR_TYPE_CONNECTIVITY;
  case K::kTimeout:
    return plugin::v1::ERROR_TYPE_TIMEOUT;
  case K::kNotFound:
  case K::kInvalidInput:
    return plugin::v1::ERROR_TYPE_INVALID_INPUT;
  default:
    return plugin::v1::ERROR_TYPE_UNKNOWN;
  }
}

void fail(const kube::Error& e, const std::string& where) {
  if (e.is(kube::ErrorKind::kCancelled)) throw sdk::Cancelled();
  std::string message = where + e.what();
  for (const auto& c : e.causes()) {
    if (c.message.empty() || message.find(c.message) != std::string::npos) continue;
    message += "; " + (c.field.empty() ? std::string() : c.field + ": ") + c.message;
  }
  throw sdk::StepError(error_type(e.kind()), message);
}

} // namespace capstan::plugins::kubernetes
