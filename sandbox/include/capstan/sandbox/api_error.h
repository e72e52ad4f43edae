// Kubernetes API errors: every failure the sandbox reports is a meta/v1 Status object.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace capstan::sandbox {

struct StatusCause {
  std::string reason; // FieldValueInvalid, FieldValueRequired, FieldManagerConflict, ...
  std::string message;
  std::string field;
};

// Thrown inside request handling and turned into a Status response at the handler's edge;
// never crosses a thread or the network as an exception.
class ApiError : public std::runtime_error {
public:
  ApiError(int code, std::string reason, std::string message);
  int code() const { return code_; }
  const std::string& reason() const { return reason_; }
  ApiError& with_details(std::string name, std::string group, std::string kind);
  ApiError& with_cause(StatusCause cause);
  const std::vector<StatusCause>& causes() const { return causes_; }
  nlohmann::json status() const;

  static ApiError not_found(const std::string& group, const std::string& resource,
                            const std::string& name);
  static ApiError already_exists(const std::string& group, const std::string& resource,
                                 const std::string& name);
  static ApiError conflict(const std::string& group, const std::string& resource,
                           const std::string& name, const std::string& why);
  static ApiError bad_request(const std::string& message);
  // 422 Invalid: "<Kind>.<group> \"name\" is invalid: <causes>".
  static ApiError invalid(const std::string& kind, const std::string& group,
                          const std::string& name, std::vector<StatusCause> causes);
  static ApiError method_not_allowed(const std::string& message);
  static ApiError unsupported_media_type(const std::string& content_type);
  static ApiError not_acceptable(const std::string& message);
  static ApiError gone(const std::string& message);
  static ApiError too_large(const std::string& message);
  static ApiError internal(const std::string& message);

private:
  int code_;
  std::string reason_;
  std::string name_, group_, kind_;
  bool has_details_ = false;
  std::vector<StatusCause> causes_;
};

// A Status of kind Success (DELETE of some kinds returns one).
nlohmann::json success_status(const std::string& name, const std::string& group,
                              const std::string& kind, const std::string& uid);

} // namespace capstan::sandbox
