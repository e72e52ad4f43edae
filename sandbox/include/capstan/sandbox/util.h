// Small pieces shared by the API server and the controllers: time stamps, identifiers, name
// rules, label and field selectors.
#pragma once

#include <nlohmann/json.hpp>

#include <capstan/labels/label_selector.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace capstan::sandbox {

std::string rfc3339(std::chrono::system_clock::time_point t);
std::string now_rfc3339();
// Parses "2024-01-02T03:04:05Z" (fractions ignored); nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& s);
std::string new_uid();
// Five characters from the alphabet the API server uses for generateName and pod suffixes.
std::string random_suffix(std::size_t n = 5);
// FNV-1a of s, rendered in the safe alphabet (pod-template-hash style).
std::string safe_hash(const std::string& s);

// Name rules; each returns the upstream message, or "" when valid.
std::string check_dns1123_subdomain(const std::string& v);
std::string check_dns1123_label(const std::string& v);
std::string check_dns1035_label(const std::string& v);
std::string check_label_key(const std::string& v);
std::string check_label_value(const std::string& v);

// A label selector, parsed and matched by the parser capstan::labels shares with the GitOps
// applications, so that `kubectl get -l` behaves as against a real API server.
class LabelSelector {
public:
  // The string form ?labelSelector= carries ("a=b,c!=d,e in (f,g),!h,i,j>3"). Throws
  // ApiError(400) naming the character at which a malformed selector goes wrong.
  static LabelSelector parse(const std::string& text);
  // From a metav1.LabelSelector object (matchLabels + matchExpressions).
  static LabelSelector from_object(const nlohmann::json& selector);
  bool matches(const nlohmann::json& labels) const { return selector_.matches(labels); }
  bool empty() const { return selector_.empty(); }
  // As Kubernetes prints a workload's selector: matchLabels as key=value, then the expressions.
  std::string str() const { return text_; }

private:
  labels::LabelSelector selector_;
  std::string text_;
};

// metadata.name / metadata.namespace (and a few kind-specific) field selectors.
class FieldSelector {
public:
  static FieldSelector parse(const std::string& text); // throws ApiError(400)
  bool matches(const nlohmann::json& object) const;
  bool empty() const { return reqs_.empty(); }
  // The value required for `field` with '=', if any.
  std::optional<std::string> required(const std::string& field) const;

private:
  struct Requirement {
    std::string field;
    bool equal = true;
    std::string value;
  };
  std::vector<Requirement> reqs_;
};

// The value at a simple JSONPath such as ".spec.replicas" or ".status.conditions[0].type"
// (what CRD printer columns and scale subresource paths use); null when absent.
nlohmann::json json_path_get(const nlohmann::json& object, const std::string& path);
void json_path_set(nlohmann::json& object, const std::string& path, const nlohmann::json& value);

// Base64 (Secret data).
std::string base64_encode(const std::string& in);
std::optional<std::string> base64_decode(const std::string& in);

} // namespace capstan::sandbox
