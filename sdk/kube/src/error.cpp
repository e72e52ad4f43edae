// Status objects into typed errors.
#include "capstan/kube/error.h"

#include <nlohmann/json.hpp>

namespace capstan::kube {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::kBadRequest:
    return "BadRequest";
  case ErrorKind::kUnauthorized:
    return "Unauthorized";
  case ErrorKind::kForbidden:
    return "Forbidden";
  case ErrorKind::kNotFound:
    return "NotFound";
  case ErrorKind::kMethodNotAllowed:
    return "MethodNotAllowed";
  case ErrorKind::kConflict:
    return "Conflict";
  case ErrorKind::kAlreadyExists:
    return "AlreadyExists";
  case ErrorKind::kExpired:
    return "Expired";
  case ErrorKind::kRequestEntityTooLarge:
    return "RequestEntityTooLarge";
  case ErrorKind::kUnsupportedMediaType:
    return "UnsupportedMediaType";
  case ErrorKind::kInvalid:
    return "Invalid";
  case ErrorKind::kTooManyRequests:
    return "TooManyRequests";
  case ErrorKind::kInternalError:
    return "InternalError";
  case ErrorKind::kServiceUnavailable:
    return "ServiceUnavailable";
  case ErrorKind::kServerTimeout:
    return "ServerTimeout";
  case ErrorKind::kServerError:
    return "ServerError";
  case ErrorKind::kUnsupportedKind:
    return "UnsupportedKind";
  case ErrorKind::kConnectivity:
    return "Connectivity";
  case ErrorKind::kAuthentication:
    return "Authentication";
  case ErrorKind::kConfiguration:
    return "Configuration";
  case ErrorKind::kTimeout:
    return "Timeout";
  case ErrorKind::kCancelled:
    return "Cancelled";
  case ErrorKind::kProtocol:
    return "Protocol";
  }
  return "Unknown";
}

namespace {

ErrorKind kind_of(int status, const std::string& reason) {
  if (reason == "AlreadyExists") return ErrorKind::kAlreadyExists;
  if (reason == "Conflict") return ErrorKind::kConflict;
  if (reason == "NotFound") return ErrorKind::kNotFound;
  if (reason == "Invalid") return ErrorKind::kInvalid;
  if (reason == "Expired" || reason == "Gone") return ErrorKind::kExpired;
  if (reason == "Unauthorized") return ErrorKind::kUnauthorized;
  if (reason == "Forbidden") return ErrorKind::kForbidden;
  if (reason == "TooManyRequests") return ErrorKind::kTooManyRequests;
  if (reason == "Timeout") return ErrorKind::kServerTimeout;
  switch (status) {
  case 400:
    return ErrorKind::kBadRequest;
  case 401:
    return ErrorKind::kUnauthorized;
  case 403:
    return ErrorKind::kForbidden;
  case 404:
    return ErrorKind::kNotFound;
  case 405:
    return ErrorKind::kMethodNotAllowed;
  case 409:
    return ErrorKind::kConflict;
  case 410:
    return ErrorKind::kExpired;
  case 413:
    return ErrorKind::kRequestEntityTooLarge;
  case 415:
    return ErrorKind::kUnsupportedMediaType;
  case 422:
    return ErrorKind::kInvalid;
  case 429:
    return ErrorKind::kTooManyRequests;
  case 500:
    return ErrorKind::kInternalError;
  case 503:
    return ErrorKind::kServiceUnavailable;
  case 504:
    return ErrorKind::kServerTimeout;
  default:
    return ErrorKind::kServerError;
  }
}

std::string text_of(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

} // namespace

Error error_from_response(int http_status, std::string_view body, const std::string& what,
                          std::optional<std::chrono::seconds> retry_after) {
  std::string reason;
  std::string message;
  std::vector<StatusCause> causes;
  auto status = nlohmann::json::parse(body, nullptr, false);
  if (status.is_object() && text_of(status, "kind") == "Status") {
    reason = text_of(status, "reason");
    message = text_of(status, "message");
    if (auto d = status.find("details"); d != status.end() && d->is_object()) {
      if (auto c = d->find("causes"); c != d->end() && c->is_array()) {
        for (const auto& cause : *c) {
          if (!cause.is_object()) continue;
          causes.push_back(
              {text_of(cause, "reason"), text_of(cause, "message"), text_of(cause, "field")});
        }
      }
    }
  }
  if (message.empty()) {
    // Not a Status (a proxy's HTML page, an empty body): keep a short excerpt.
    std::string excerpt(body.substr(0, 200));
    for (char& ch : excerpt) {
      if (ch == '\n' || ch == '\r') ch = ' ';
    }
    message = "the server answered HTTP " + std::to_string(http_status) +
              (excerpt.empty() ? std::string() : ": " + excerpt);
  }
  Error e(kind_of(http_status, reason), what + ": " + message, http_status);
  e.with_reason(reason).with_causes(std::move(causes)).with_retry_after(retry_after);
  return e;
}

bool is_retryable(const Error& e) {
  switch (e.kind()) {
  case ErrorKind::kTooManyRequests:
  case ErrorKind::kServiceUnavailable:
  case ErrorKind::kServerTimeout:
  case ErrorKind::kConnectivity:
    return true;
  case ErrorKind::kInternalError:
    return e.retry_after().has_value();
  case ErrorKind::kServerError:
    return e.http_status() == 502;
  default:
    return false;
  }
}

} // namespace capstan::kube
