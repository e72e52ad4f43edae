// Kubernetes label selectors in their string form ("tier=web,env in (dev,qa),!legacy"), as
// `kubectl get -l` and `argocd app list -l` take them, matched against an object's labels.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capstan::apps {

struct LabelRequirement {
  enum class Op {
    kEquals,
    kNotEquals,
    kIn,
    kNotIn,
    kExists,
    kDoesNotExist,
    kGreaterThan,
    kLessThan
  };
  std::string key;
  Op op = Op::kExists;
  std::vector<std::string> values; // one for =, !=, > and <; one or more for in and notin
};

// Requirements joined by commas, all of which must hold (an empty selector matches everything):
// `key=value` (or `==`), `key!=value` (also true without the label), `key in (v1,v2)`,
// `key notin (v1,v2)` (also true without the label), `key` (has it), `!key` (has it not), and
// `key>N` / `key<N` (the label's value is an integer above / below N). Keys and values follow
// Kubernetes' rules for label keys and values.
class LabelSelector {
public:
  // nullopt on a malformed selector; `error` then says at which character (1-based) and why.
  static std::optional<LabelSelector> parse(std::string_view text, std::string& error);

  // `labels` is an object of label name to value (metadata.labels); anything else has none.
  bool matches(const nlohmann::json& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }

private:
  std::vector<LabelRequirement> requirements_;
};

// Why `key` is not a Kubernetes label key ([prefix/]name: a DNS subdomain of at most 253
// characters, and a name of at most 63 alphanumerics, '-', '_' or '.' that starts and ends
// alphanumeric); "" when it is one.
std::string label_key_problem(std::string_view key);
// Why `value` is not a Kubernetes label value (empty, or as a key's name); "" when it is one.
std::string label_value_problem(std::string_view value);

} // namespace capstan::apps
