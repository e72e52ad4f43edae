// meta/v1 Status objects for the errors the API server reports.
#include "capstan/sandbox/api_error.h"

namespace capstan::sandbox {

namespace {
std::string qualified(const std::string& group, const std::string& resource) {
  return group.empty() ? resource : resource + "." + group;
}
} // namespace

ApiError::ApiError(int code, std::string reason, std::string message)
    : std::runtime_error(std::move(message)), code_(code), reason_(std::move(reason)) {}

ApiError& ApiError::with_details(std::string name, std::string group, std::string kind) {
  name_ = std::move(name);
  group_ = std::move(group);
  kind_ = std::move(kind);
  has_details_ = true;
  return *this;
}

ApiError& ApiError::with_cause(StatusCause cause) {
  causes_.push_back(std::move(cause));
  has_details_ = true;
  return *this;
}

nlohmann::json ApiError::status() const {
  nlohmann::json s = {
      {"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
      {"status", "Failure"}, {"message", what()},  {"reason", reason_},
      {"code", code_}};
  if (reason_.empty()) s.erase("reason");
  if (has_details_) {
    nlohmann::json d = nlohmann::json::object();
    if (!name_.empty()) d["name"] = name_;
    if (!group_.empty()) d["group"] = group_;
    if (!kind_.empty()) d["kind"] = kind_;
    if (!causes_.empty()) {
      d["causes"] = nlohmann::json::array();
      for (const auto& c : causes_) {
        nlohmann::json cj = {{"reason", c.reason}, {"message", c.message}};
        if (!c.field.empty()) cj["field"] = c.field;
        d["causes"].push_back(cj);
      }
    }
    s["details"] = d;
  }
  return s;
}

ApiError ApiError::not_found(const std::string& group, const std::string& resource,
                             const std::string& name) {
  ApiError e(404, "NotFound", qualified(group, resource) + " \"" + name + "\" not found");
  e.with_details(name, group, resource);
  return e;
}

ApiError ApiError::already_exists(const std::string& group, const std::string& resource,
                                  const std::string& name) {
  ApiError e(409, "AlreadyExists", qualified(group, resource) + " \"" + name + "\" already exists");
  e.with_details(name, group, resource);
  return e;
}

ApiError ApiError::conflict(const std::string& group, const std::string& resource,
                            const std::string& name, const std::string& why) {
  ApiError e(409, "Conflict",
             "Operation cannot be fulfilled on " + qualified(group, resource) + " \"" + name +
                 "\": " + why);
  e.with_details(name, group, resource);
  return e;
}

ApiError ApiError::bad_request(const std::string& message) {
  return ApiError(400, "BadRequest", message);
}

ApiError ApiError::invalid(const std::string& kind, const std::string& group,
                           const std::string& name, std::vector<StatusCause> causes) {
  std::string msg = (group.empty() ? kind : kind + "." + group) + " \"" + name + "\" is invalid: ";
  if (causes.size() == 1) {
    msg += causes[0].field + ": " + causes[0].message;
  } else {
    msg += "[";
    for (std::size_t i = 0; i < causes.size(); ++i) {
      if (i) msg += ", ";
      msg += causes[i].field + ": " + causes[i].message;
    }
    msg += "]";
  }
  ApiError e(422, "Invalid", msg);
  e.with_details(name, group, kind);
  for (auto& c : causes) e.with_cause(std::move(c));
  return e;
}

ApiError ApiError::method_not_allowed(const std::string& message) {
  return ApiError(405, "MethodNotAllowed", message);
}

ApiError ApiError::unsupported_media_type(const std::string& content_type) {
  return ApiError(415, "UnsupportedMediaType",
                  "the body of the request was in an unknown format - accepted media types "
                  "include: application/json, application/yaml, application/apply-patch+yaml, "
                  "application/merge-patch+json, application/json-patch+json, "
                  "application/strategic-merge-patch+json (got \"" +
                      content_type + "\")");
}

ApiError ApiError::not_acceptable(const std::string& message) {
  return ApiError(406, "NotAcceptable", message);
}

ApiError ApiError::gone(const std::string& message) {
  return ApiError(410, "Expired", message);
}

ApiError ApiError::too_large(const std::string& message) {
  return ApiError(413, "RequestEntityTooLarge", message);
}

ApiError ApiError::internal(const std::string& message) {
  return ApiError(500, "InternalError", "Internal error occurred: " + message);
}

nlohmann::json success_status(const std::string& name, const std::string& group,
                              const std::string& kind, const std::string& uid) {
  return {{"kind", "Status"},
          {"apiVersion", "v1"},
          {"metadata", nlohmann::json::object()},
          {"status", "Success"},
          {"details", {{"name", name}, {"group", group}, {"kind", kind}, {"uid", uid}}}};
}

} // namespace capstan::sandbox
