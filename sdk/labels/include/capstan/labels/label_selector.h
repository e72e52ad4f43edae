// Kubernetes label selectors, matched against an object's labels: the string form
// ("tier=web,env in (dev,qa),!legacy") as `kubectl get -l` and `argocd app list -l` take it, and
// the requirements of the object form (matchLabels, matchExpressions). Shared by the GitOps
// applications (ApplicationSet selectors, `capstan apps list -l`) and capstan-sandbox's API.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capstan::labels {

struct LabelRequirement {
  enum class Op { kIn, kNotIn, kExists, kDoesNotExist, kGreaterThan, kLessThan };
  std::string key;
  Op op = Op::kExists;
  // In: one or more (`key=value` is In with one value); NotIn likewise (`key!=value`); one
  // integer for GreaterThan and LessThan; none otherwise.
  std::vector<std::string> values;
};

// Requirements all of which must hold (an empty selector matches everything). In the string
// form, joined by commas: `key=value` (or `==`), `key!=value` (also true without the label),
// `key in (v1,v2)`, `key notin (v1,v2)` (also true without the label), `key` (has it), `!key`
// (has it not), and `key>N` / `key<N` (the label's value is an integer above / below N).
class LabelSelector {
public:
  LabelSelector() = default;
  explicit LabelSelector(std::vector<LabelRequirement> requirements)
      : requirements_(std::move(requirements)) {}

  // The string form; nullopt when malformed, and `error` then says at which character
  // (1-based) and why.
  static std::optional<LabelSelector> parse(std::string_view text, std::string& error);

  // `labels` is an object of label name to value (metadata.labels); anything else has none. A
  // value that is not a string (a YAML number) counts as its JSON text.
  bool matches(const nlohmann::json& labels) const;
  bool matches(const std::map<std::string, std::string>& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }

private:
  std::vector<LabelRequirement> requirements_;
};

// Why `key` is not a Kubernetes label key ([prefix/]name: the prefix a lower-case DNS
// subdomain, the name at most 63 alphanumerics, '-', '_' or '.' starting and ending
// alphanumeric); "" when it is one.
std::string label_key_problem(std::string_view key);
// Why `value` is not a Kubernetes label value (empty, or as a key's name); "" when it is one.
std::string label_value_problem(std::string_view value);

} // namespace capstan::labels
